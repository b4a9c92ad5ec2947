"""Compiled contract artifacts (ABI + bytecode), shipped in the SDK as ``trace_sdk.artifacts``."""
