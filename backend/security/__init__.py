"""Key material: API key hashing, passwords, sessions, encryption of stored secrets."""
