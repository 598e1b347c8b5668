"""One order's dossier: its whole record as a PDF, the same as data, every original file,
and a manifest that lets anyone check it offline (docs/proof.md).

gather.py reads (one snapshot, as the reader may see it), document.py shapes
dossier.json and manifest.json, pdf.py draws the PDF from the document,
archive.py writes the ZIP, service.py decides who gets what.
"""
