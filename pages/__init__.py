"""Dash pages (registered with ``dash.register_page``; loaded by ``create_app``)."""
