"""The skills-and-roles catalog: schema, migrations, queries, importers and the starter catalog."""
