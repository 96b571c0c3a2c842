def exact_match(outputs: str, expectations: dict[str, str]) -> bool:
    return outputs == expectations["expected_response"]
