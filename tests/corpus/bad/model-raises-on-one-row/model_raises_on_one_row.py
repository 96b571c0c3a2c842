KNOWN = {"What is 2+2?": "4", "Capital of France?": "Paris", "Color of the sky?": "blue"}


def predict(question: str) -> str:
    if question == "Capital of France?":
        raise ValueError("upstream returned HTTP 500")
    return KNOWN[question]
