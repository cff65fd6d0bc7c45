"""The online trainer process (``streamrec trainer``): training batches in, promoted versions out."""
