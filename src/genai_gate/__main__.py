from genai_gate.cli import run

# guarded: the MLflow logging process (tracking_process.py) imports this module as its
# parent's main module, and must not start a second genai-gate
if __name__ == "__main__":
    run()
