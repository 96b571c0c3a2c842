def judge(prediction: str, reference: str) -> float:
    return 1.0
