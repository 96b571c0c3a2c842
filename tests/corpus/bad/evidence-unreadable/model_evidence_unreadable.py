raise RuntimeError("the evidence check must come first")
