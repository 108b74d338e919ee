"""The portal's human pages under /portal/: login, the review queue, version pages with diff and source."""
