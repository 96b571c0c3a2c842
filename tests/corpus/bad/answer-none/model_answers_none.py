def predict(question: str) -> None:
    return None
