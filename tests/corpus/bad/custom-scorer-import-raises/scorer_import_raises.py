raise ImportError("the judge needs the openai package")
