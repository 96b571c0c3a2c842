import sys

sys.exit("set OPENAI_API_KEY first")
