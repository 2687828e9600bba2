"""The run viewer's static files (index.html, viewer.js, viewer.css), served by agent/api/pages.py."""
