"""Human review of picks: :mod:`.reviews`, the review database (the app's only write path)."""
