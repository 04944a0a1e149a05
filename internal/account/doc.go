// Package account signs site administrators in. A site-admin login is a
// platform-wide user kept on primary, not a row of one tenant's data: one
// person may run several websites, on any shards, with one email and one
// password, and a tenant move never touches their login. What a user may
// administer is a membership per website (owner or admin). A session is opened
// for one website and is only valid there, and only while that membership
// lasts, so a member of tenant A can never use tenant B's admin with the same
// cookie. Session tokens are random and only their SHA-256 is stored. Sign-in
// attempts are counted apart, by internal/throttle, before a password is
// checked here.
package account
