"""Ways of reading a corpus: ask (whole corpus in context), prompts and citations."""
