// Package config reads pwb's database configuration from a Rails-format
// config/database.yml, so that operators can bring the file their Rails
// deployment already uses instead of learning a second format: anchors and
// `<<: *default` merges, url entries and multi-database environments work as
// they do in Rails, and ${VAR} references stand in for Rails' ERB. The entry
// `primary` is the logical shard "default" and every other tenant entry is a
// shard named by its key. Because these errors are usually read in deploy
// logs, each one is a single line naming the file, environment and entry
// (with a line number where known) and never contains a password.
package config
