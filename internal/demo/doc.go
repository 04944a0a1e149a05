// Package demo fills a tenant's website with realistic sample content for
// `pwb dev`: the agency's details, a few pages, about thirty properties with
// features and photos, and some enquiries, plus an owner login to the site's
// admin. Everything is generated in Go from a seed (photos included, drawn
// and encoded as JPEG here), so it needs no files or network, and the same
// seed always gives the same site. Content goes through package content and
// so lands on the tenant's own shard under its write fence, like any edit; the
// login goes through package account on primary. Seeding a site that already
// has properties writes no content, so `pwb dev` can seed on every start.
package demo
