"""The mock provider, a test double: a simulated LLM API (latency, rate limits, faults) in
every wire format the adapters speak, served on loopback (`server`) or answered in-process
(`transport`, for base URLs ``mock://``)."""
