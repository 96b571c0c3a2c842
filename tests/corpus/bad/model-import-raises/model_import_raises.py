raise RuntimeError("OPENAI_API_KEY is not set")
