"""Uploads, downloads, the file library, previews and the sweeping of what expired."""
