"""Small helpers every app may use; depends on no app."""
