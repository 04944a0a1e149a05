// Package web is pwb's one HTTP server: each tenant's public site and site
// admin, resolved by host, and the platform's own pages on the platform host.
//
// A request passes an explicit chain of small middlewares (recover, request
// id, access log, host check, tenant resolution, status gate). Tenant
// resolution puts the website and its tenant.Scope into the request context;
// tenant handlers read and write tenant data only through that scope, so no
// handler can choose a shard, and a tenant whose shard is missing or down gets
// a 503 page instead of anybody else's data. Handlers return errors, and one
// function maps error kinds to status codes and error pages. Pages are
// rendered into a buffer before anything is written, so a template error is a
// clean 500, never half a page.
package web
