def predict(prompt: str, temperature: float) -> str:
    return prompt
