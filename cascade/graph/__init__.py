"""Graph identity, construction and planning: pure functions over lazy results, no asyncio."""
