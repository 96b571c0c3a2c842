def strict_judge(inputs: dict[str, str], outputs: str) -> float:
    if inputs["question"] == "Color of the sky?":
        raise ZeroDivisionError("judge divided by zero")
    return 1.0
