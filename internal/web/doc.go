// Package web is pwb's one HTTP server: each tenant's public site and site
// admin, resolved by host, and the platform's own pages on the platform host.
//
// A request passes an explicit chain of small middlewares (recover, request
// id, access log, host check, tenant resolution, status gate). Tenant
// resolution puts the website and its tenant.Scope into the request context;
// tenant handlers read and write tenant data only through that scope, so no
// handler can choose a shard, and a tenant whose shard is missing or down gets
// a 503 page instead of anybody else's data.
//
// Every tenant write goes through tenantWrite. When the tenant has moved to
// another shard while the request was on its way (an online move's cut-over,
// or a registry cache that was behind), the old shard refuses the write
// before any of it ran; tenantWrite then reads the tenant again from primary
// and makes the write once more on the new shard, so the visitor sees a short
// wait rather than an error. A tenant frozen read_only or in maintenance
// still gets a 503.
//
// Handlers return errors, and one function maps error kinds to status codes
// and error pages. Pages are rendered into a buffer before anything is
// written, so a template error is a clean 500, never half a page.
package web
