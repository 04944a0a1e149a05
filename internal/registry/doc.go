// Package registry is the tenant registry on primary: which websites exist,
// their tier, status, and the shard each one lives on. Everything that needs
// to find a tenant's data starts here, so its rules (subdomain format,
// reserved names, one subdomain per website regardless of case) are enforced
// both here and by the table's constraints.
package registry
