-- A counter that any statement changing catalog content (not run bookkeeping) advances, so in-memory caches
-- derived from the catalog (the extractor's alias index, role skill sets) check one sequence value per use
-- instead of aggregating 10^5-row tables. A sequence is never rolled back or locked: an aborted import at most
-- costs one needless rebuild, and concurrent runs never queue on it. Role updates are left out on purpose:
-- every persisted run moves a centroid.

CREATE SEQUENCE catalog_changes;

CREATE FUNCTION note_catalog_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval(format('%I.catalog_changes', TG_TABLE_SCHEMA));
    RETURN NULL;
END $$;

CREATE TRIGGER skills_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON skills
    FOR EACH STATEMENT EXECUTE FUNCTION note_catalog_change();
CREATE TRIGGER skill_aliases_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON skill_aliases
    FOR EACH STATEMENT EXECUTE FUNCTION note_catalog_change();
CREATE TRIGGER role_aliases_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON role_aliases
    FOR EACH STATEMENT EXECUTE FUNCTION note_catalog_change();
CREATE TRIGGER role_skills_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON role_skills
    FOR EACH STATEMENT EXECUTE FUNCTION note_catalog_change();
CREATE TRIGGER role_dimensions_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON role_dimensions
    FOR EACH STATEMENT EXECUTE FUNCTION note_catalog_change();
CREATE TRIGGER skill_dimensions_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON skill_dimensions
    FOR EACH STATEMENT EXECUTE FUNCTION note_catalog_change();
CREATE TRIGGER roles_added_or_removed AFTER INSERT OR DELETE OR TRUNCATE ON roles
    FOR EACH STATEMENT EXECUTE FUNCTION note_catalog_change();
