"""Importers of real taxonomies (ESCO, O*NET) into the catalog schema."""
