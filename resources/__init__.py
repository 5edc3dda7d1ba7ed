"""Built-in scenarios, icons and demo texts, shipped as package data (see lazytsc.resources)."""
