"""Files: the content-addressed blob store, resumable uploads and previews."""
