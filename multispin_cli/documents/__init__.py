"""Files multispin reads and writes: profiles (the TOML schema), plan files, engine metrics, atomic output."""
