"""List queries: the filter grammar, sorting, keyset pages and their cursors."""
