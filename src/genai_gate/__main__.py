from genai_gate.cli import run

run()
