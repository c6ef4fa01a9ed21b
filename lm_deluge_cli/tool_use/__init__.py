"""Tool use: tool definitions (from job files, lines or Python functions), and agent loops
that run a batch of conversations' tool calls round after round."""
