# three answers that are not text: each must be its row's error, not its printed form
def predict(question: str) -> object:
    if question == "What is 2+2?":
        return b"4"
    if question == "Capital of France?":
        return (w for w in ["Paris"])
    return {"score": 0.9, "tokens": 3}
