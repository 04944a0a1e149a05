package tenant

// Tables lists every tenant table in foreign-key order: a table comes after
// every table it references. Copy in this order; delete in reverse. It is the
// only source of tenant table names for SQL built at run time, and a test
// checks it against the catalog after migrating.
var Tables = []string{
	"agencies",
	"pages",
	"properties",
	"property_features",
	"property_photos",
	"contacts",
	"messages",
}
