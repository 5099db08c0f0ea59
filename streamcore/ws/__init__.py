# placeholder, replaced by ws-core
"""streamcore.ws (placeholder until the ws-core branch is merged)."""
