package config

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const file = "config/database.yml"

const seedYAML = `default: &default
  adapter: postgresql
  encoding: unicode
  pool: 5
  host: localhost
  username: pwb

production:
  primary:
    <<: *default
    database: pwb_production_primary
  shard_1:
    <<: *default
    database: pwb_production_premium_shard_1
    migrations_paths: db/migrate_tenants
  shard_2:
    <<: *default
    database: pwb_production_premium_shard_2
    migrations_paths: db/migrate_tenants
`

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  string
		vars map[string]string
		want *Config
	}{
		{
			name: "seed example with merge",
			yaml: seedYAML,
			env:  "production",
			want: &Config{
				File: file, Env: "production",
				Shards: []Shard{
					{Name: "default", Key: "primary", Host: "localhost", Port: 5432, Database: "pwb_production_primary", User: "pwb", Pool: 5, Line: 9},
					{Name: "shard_1", Key: "shard_1", Host: "localhost", Port: 5432, Database: "pwb_production_premium_shard_1", User: "pwb", Pool: 5, MigrationsPaths: []string{"db/migrate_tenants"}, Line: 12},
					{Name: "shard_2", Key: "shard_2", Host: "localhost", Port: 5432, Database: "pwb_production_premium_shard_2", User: "pwb", Pool: 5, MigrationsPaths: []string{"db/migrate_tenants"}, Line: 16},
				},
			},
		},
		{
			name: "url entries, postgresql scheme, query params",
			yaml: `production:
  shard_1:
    url: postgresql://app:s%40cret@db1.internal:6543/tenants_1?sslmode=require&pool=7&encoding=unicode&options=-c+x%3D1
  primary:
    url: postgres://app@db0.internal/pwb
    sslmode: verify-full
`,
			env: "production",
			want: &Config{
				File: file, Env: "production",
				Shards: []Shard{
					{Name: "default", Key: "primary", Host: "db0.internal", Port: 5432, Database: "pwb", User: "app", Params: map[string]string{"sslmode": "verify-full"}, Line: 4},
					{Name: "shard_1", Key: "shard_1", Host: "db1.internal", Port: 6543, Database: "tenants_1", User: "app", Password: "s@cret", Params: map[string]string{"sslmode": "require", "options": "-c+x=1"}, Pool: 7, Line: 2},
				},
			},
		},
		{
			name: "url wins over merged host and database",
			yaml: `default: &default
  host: localhost
  port: 5433
  database: wrong
  username: wrong
  password: wrong
  pool: 3
  sslmode: disable
production:
  primary:
    <<: *default
    url: postgres://u:p@10.0.0.5/right?sslmode=require
`,
			env: "production",
			want: &Config{
				File: file, Env: "production",
				Shards: []Shard{
					{Name: "default", Key: "primary", Host: "10.0.0.5", Port: 5432, Database: "right", User: "u", Password: "p", Params: map[string]string{"sslmode": "require"}, Pool: 3, Line: 10},
				},
			},
		},
		{
			name: "empty url falls back to discrete keys",
			yaml: `production:
  primary:
    url: ${DATABASE_URL:-}
    database: pwb
`,
			env: "production",
			want: &Config{File: file, Env: "production", Shards: []Shard{
				{Name: "default", Key: "primary", Host: "127.0.0.1", Port: 5432, Database: "pwb", Line: 2},
			}},
		},
		{
			name: "entry keys override merged ones, list merge, earlier wins",
			yaml: `a: &a
  host: a-host
  port: 1111
b: &b
  host: b-host
  port: 2222
  username: b-user
production:
  primary:
    <<: [*a, *b]
    port: 3333
    database: pwb
`,
			env: "production",
			want: &Config{File: file, Env: "production", Shards: []Shard{
				{Name: "default", Key: "primary", Host: "a-host", Port: 3333, Database: "pwb", User: "b-user", Line: 9},
			}},
		},
		{
			name: "env expansion with defaults",
			yaml: `production:
  primary:
    host: ${DB_HOST:-localhost}
    port: ${DB_PORT:-5432}
    database: pwb_${RAILS_ENV}_${SUFFIX:-primary}
    username: ${DB_USER}
    password: "${DB_PASSWORD}"
    pool: ${POOL:-10}
    encoding: ${ENCODING:-unicode}
    idle_timeout: ${IDLE:-300}
    checkout_timeout: 0.5
    prepared_statements: ${PREPARED:-true}
  max_connections_total: ${MAX_CONNS:-200}
`,
			env:  "production",
			vars: map[string]string{"DB_HOST": "", "DB_PORT": "6000", "RAILS_ENV": "production", "DB_USER": "pwb", "DB_PASSWORD": "p$w ${x"},
			want: &Config{File: file, Env: "production", MaxConnectionsTotal: 200, Shards: []Shard{
				{Name: "default", Key: "primary", Host: "localhost", Port: 6000, Database: "pwb_production_primary", User: "pwb", Password: "p$w ${x", Pool: 10, Line: 2,
					IdleTimeout: 300 * time.Second, CheckoutTimeout: 500 * time.Millisecond, PreparedStatements: new(true)},
			}},
		},
		{
			name: "migrations_paths list vs string, ignored non-tenant entries, replicas",
			yaml: `development:
  primary:
    database: pwb_dev
  primary_replica:
    database: pwb_dev
    replica: true
  cache:
    database: pwb_cache
    migrations_paths: db/cache_migrate
  queue:
    database: pwb_queue
    migrations_paths: [db/queue_migrate, db/other]
  shard_a:
    database: pwb_a
    migrations_paths:
      - db/migrate
      - db/migrate_tenants
  shard_b:
    database: pwb_b
`,
			env: "development",
			want: &Config{
				File: file, Env: "development",
				Shards: []Shard{
					{Name: "default", Key: "primary", Host: "127.0.0.1", Port: 5432, Database: "pwb_dev", Line: 2},
					{Name: "shard_a", Key: "shard_a", Host: "127.0.0.1", Port: 5432, Database: "pwb_a", MigrationsPaths: []string{"db/migrate", "db/migrate_tenants"}, Line: 13},
					{Name: "shard_b", Key: "shard_b", Host: "127.0.0.1", Port: 5432, Database: "pwb_b", Line: 18},
				},
				Replicas: []Shard{
					{Name: "primary_replica", Key: "primary_replica", Host: "127.0.0.1", Port: 5432, Database: "pwb_dev", Line: 4},
				},
				Ignored: []string{"cache", "queue"},
			},
		},
		{
			name: "rails keys ignored, environment alias, unix socket, ipv6 url",
			yaml: `production: &prod
  primary:
    adapter: postgis
    host: /var/run/postgresql
    database: pwb
    timeout: 5000
    schema_search_path: public
    variables:
      statement_timeout: 5s
    prepared_statements: false
    reaping_frequency: <%= ENV["T"] %>
  shard_1:
    url: postgres://[::1]:5444/s1
staging: *prod
`,
			env: "staging",
			want: &Config{File: file, Env: "staging", Shards: []Shard{
				{Name: "default", Key: "primary", Host: "/var/run/postgresql", Port: 5432, Database: "pwb", Line: 2, PreparedStatements: new(false)},
				{Name: "shard_1", Key: "shard_1", Host: "::1", Port: 5444, Database: "s1", Line: 12},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.yaml), file, tt.env, env(tt.vars))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const prod = `environment "production"`
	tests := []struct {
		name string
		yaml string
		env  string // "production" when empty
		vars map[string]string
		want []string // substrings of the message, besides the file name
	}{
		{"empty file", "", "", nil, []string{"empty"}},
		{"comments only", "# nothing\n", "", nil, []string{"empty"}},
		{"top level list", "- a\n- b\n", "", nil, []string{":1:", "top level must be a mapping"}},
		{"yaml syntax", "production:\n  primary:\n    database: x\n    host: a: b\n", "", nil, []string{file + ":4: YAML syntax error: mapping values"}},
		{"unknown anchor", "production:\n  primary: *nope\n", "", nil, []string{"YAML syntax error", "nope"}},
		{"env not found", "default: &default\n  pool: 5\ndevelopment:\n  primary: {database: a}\nproduction:\n  primary: {database: b}\n", "staging", nil,
			[]string{`environment "staging" not found (have: development, production)`}},
		{"env not a mapping", "production: [a]\n", "", nil, []string{":1:", prod, "must be a mapping"}},
		{"env empty", "production:\n", "", nil, []string{":1:", prod, "no entries"}},
		{"no primary", "production:\n  shard_1:\n    database: x\n", "", nil, []string{prod, `no "primary" entry`}},
		{"single-database format", "production:\n  adapter: postgresql\n  database: x\n", "", nil, []string{prod, `no "primary" entry`, "single-database"}},
		{"entry not a mapping", "production:\n  primary:\n    database: x\n  shard_1: postgres://h/db\n", "", nil, []string{":4:", prod, `entry "shard_1"`, "must be a mapping"}},
		{"entry empty", "production:\n  primary:\n", "", nil, []string{":2:", prod, `entry "primary"`, "empty"}},
		{"entry named default", "production:\n  primary: {database: a}\n  default: {database: b}\n", "", nil, []string{":3:", prod, `entry "default"`, "reserved"}},
		{"bad entry name", "production:\n  primary: {database: a}\n  Shard-1: {database: b}\n", "", nil, []string{":3:", prod, `entry "Shard-1"`, "invalid entry name"}},
		{"duplicate entry", "production:\n  primary: {database: a}\n  primary: {database: b}\n", "", nil, []string{":3:", prod, "defined twice"}},
		{"two shards one database", "production:\n  primary: {database: a, port: 5433}\n  shard_1: {database: b}\n  shard_2: {url: 'postgres://127.0.0.1:5433/a'}\n", "", nil,
			[]string{prod, `entries "primary" (line 2) and "shard_2" (line 4) both use database a on 127.0.0.1:5433`}},
		{"no url or database", "production:\n  primary:\n    host: h\n", "", nil, []string{":2:", prod, `entry "primary"`, "needs a url or a database"}},
		{"mysql adapter", "production:\n  primary:\n    adapter: mysql2\n    database: a\n", "", nil, []string{":3:", prod, `entry "primary"`, "adapter", "pwb supports only PostgreSQL"}},
		{"url missing scheme", "production:\n  primary: {database: a}\n  shard_1:\n    url: postgres//x\n", "", nil,
			[]string{file + `:4: environment "production": entry "shard_1": url: malformed URL "postgres//x": missing scheme`}},
		{"replication_url malformed", "production:\n  primary: {database: a}\n  shard_1:\n    database: b\n    replication_url: http://u:hunter2@h/b\n", "", nil,
			[]string{":5:", `entry "shard_1"`, "replication_url", `unsupported scheme "http"`}},
		{"url bad scheme", "production:\n  primary:\n    url: mysql://u:hunter2@h/db\n", "", nil, []string{":3:", `entry "primary"`, "url", `unsupported scheme "mysql"`}},
		{"url no host", "production:\n  primary:\n    url: postgres:///db\n", "", nil, []string{`entry "primary"`, "no host"}},
		{"url no database", "production:\n  primary:\n    url: postgres://h:5432/\n", "", nil, []string{`entry "primary"`, "no database name"}},
		{"url bad port", "production:\n  primary:\n    url: postgres://h:70000/db\n", "", nil, []string{`entry "primary"`, "port", `"70000"`}},
		{"url unparsable", "production:\n  primary:\n    url: \"postgres://u:hunter2/x@h:5432/db\"\n", "", nil, []string{`entry "primary"`, "url", "cannot be parsed", "u:xxxxx@h"}},
		{"url bad pool", "production:\n  primary:\n    url: postgres://h/db?pool=many\n", "", nil, []string{`entry "primary"`, "url", "pool"}},
		{"unset variable", "production:\n  primary:\n    database: a\n  shard_1:\n    database: b\n    password: ${DB_PASSWORD}\n", "", nil,
			[]string{":6:", prod, `entry "shard_1"`, "password: ${DB_PASSWORD} is not set and has no default"}},
		{"unset variable in merged default", "default: &d\n  host: ${DB_HOST}\nproduction:\n  primary:\n    <<: *d\n    database: a\n", "", nil,
			[]string{":2:", prod, `entry "primary"`, "host: ${DB_HOST} is not set"}},
		{"unset variable in ignored key", "production:\n  primary:\n    database: a\n    variables:\n      x: ${NOPE}\n", "", nil, []string{":5:", `entry "primary"`, "${NOPE}"}},
		{"unterminated variable", "production:\n  primary:\n    database: a\n    password: abc${DEF\n", "", nil, []string{":4:", `entry "primary"`, "password", "unterminated"}},
		{"erb", "production:\n  primary:\n    database: a\n    pool: <%= ENV.fetch(\"RAILS_MAX_THREADS\") { 5 } %>\n", "", nil, []string{":4:", `entry "primary"`, "pool: ERB (<%= ... %>) is not supported"}},
		{"invalid variable name", "production:\n  primary:\n    database: ${1X}\n", "", nil, []string{":3:", `entry "primary"`, "database", "invalid variable reference"}},
		{"port not integer", "production:\n  primary:\n    database: a\n    port: ${PORT}\n", "", map[string]string{"PORT": "54x"}, []string{":4:", `entry "primary"`, "port", `"54x"`}},
		{"port out of range", "production:\n  primary:\n    database: a\n    port: 0\n", "", nil, []string{":4:", `entry "primary"`, "port"}},
		{"pool negative", "production:\n  primary:\n    database: a\n    pool: -1\n", "", nil, []string{":4:", `entry "primary"`, "pool"}},
		{"pool not integer", "production:\n  primary:\n    database: a\n    pool: five\n", "", nil, []string{":4:", `entry "primary"`, "pool", `"five"`}},
		{"host is a list", "production:\n  primary:\n    database: a\n    host: [a, b]\n", "", nil, []string{":4:", `entry "primary"`, "host", "single value"}},
		{"migrations_paths of mappings", "production:\n  primary:\n    database: a\n    migrations_paths: [{a: b}]\n", "", nil, []string{":4:", "migrations_paths"}},
		{"replica not bool", "production:\n  primary: {database: a}\n  r:\n    database: a\n    replica: maybe\n", "", nil, []string{":5:", `entry "r"`, "replica"}},
		{"primary replica", "production:\n  primary: {database: a, replica: true}\n", "", nil, []string{":2:", `entry "primary"`, "replica"}},
		{"max_connections_total negative", "production:\n  primary: {database: a}\n  max_connections_total: -5\n", "", nil, []string{":3:", prod, "max_connections_total", "negative"}},
		{"max_connections_total not int", "production:\n  primary: {database: a}\n  max_connections_total: ${MAX:-lots}\n", "", nil, []string{":3:", prod, "max_connections_total", `"lots"`}},
		{"idle_timeout not a duration", "production:\n  primary:\n    database: a\n    idle_timeout: soon\n", "", nil, []string{":4:", `entry "primary"`, "idle_timeout", `"soon"`, "number of seconds"}},
		{"checkout_timeout zero", "production:\n  primary:\n    database: a\n    checkout_timeout: 0\n", "", nil, []string{":4:", `entry "primary"`, "checkout_timeout", "positive"}},
		{"checkout_timeout negative duration", "production:\n  primary:\n    database: a\n    checkout_timeout: -2s\n", "", nil, []string{":4:", "checkout_timeout", "positive"}},
		{"prepared_statements not bool", "production:\n  primary:\n    database: a\n    prepared_statements: sometimes\n", "", nil, []string{":4:", "prepared_statements", "true or false"}},
		{"merge of a scalar", "production:\n  primary:\n    <<: 5\n    database: a\n", "", nil, []string{":3:", "<<"}},
		{"yaml error with newline", "production:\n  primary:\n    database: \"a\tb\n", "", nil, []string{"YAML syntax error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.env
			if e == "" {
				e = "production"
			}
			_, err := Parse([]byte(tt.yaml), file, e, env(tt.vars))
			if err == nil {
				t.Fatal("Parse succeeded, want error")
			}
			checkError(t, err)
			t.Log(err)
			for _, w := range append([]string{file}, tt.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// Of several bad fields, the same one is named every time.
func TestParseErrors_SameFieldEveryTime(t *testing.T) {
	const yaml = "production:\n  primary:\n    database: a\n    advisory_locks: maybe\n    checkout_timeout: soon\n" +
		"    prepared_statements: perhaps\n    idle_timeout: later\n"
	var first string
	for range 50 {
		_, err := Parse([]byte(yaml), file, "production", env(nil))
		if err == nil {
			t.Fatal("Parse succeeded, want error")
		}
		if first == "" {
			first = err.Error()
		} else if err.Error() != first {
			t.Fatalf("errors differ between runs:\n%s\n%s", first, err)
		}
	}
	if !strings.Contains(first, "idle_timeout") {
		t.Errorf("error %q; want the durations checked first, idle_timeout before checkout_timeout", first)
	}
}

func checkError(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error has a line break: %q", msg)
	}
	if !errors.Is(err, ErrConfig) {
		t.Errorf("error %q does not wrap ErrConfig", msg)
	}
	for _, secret := range []string{"hunter2", "s3cret"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q leaks the password", msg)
		}
	}
}

func TestRedactedURLs(t *testing.T) {
	for _, raw := range []string{
		"postgres://u:s3cret@h:99999/db",
		"postgres://u:s3cret/x@h/db",
		"postgres://u:s3c@ret@h/db?sslmode=%zz",
		"postgres://u:%zzs3cret@h/db",
		"pg://u:s3cret@h/db",
		"u:s3cret@h/db",
		"postgres://h/db?password=s3cret&x=%",
		"postgres://u:s3cret@:5432/db",
		"postgres://u:s3cret@h/",
	} {
		y := "production:\n  primary:\n    url: '" + raw + "'\n"
		_, err := Parse([]byte(y), file, "production", env(nil))
		if err == nil {
			t.Errorf("%s: Parse succeeded, want error", raw)
			continue
		}
		checkError(t, err)
	}
}

func TestConnString(t *testing.T) {
	s := Shard{
		Host: "db.example.com", Port: 6432,
		Database: "pwb/tenant ?#%1",
		User:     "app@corp",
		Password: "p@ss:w/rd?#% &=+é",
		Params:   map[string]string{"sslmode": "require", "application_name": "pwb tool&x"},
	}
	cs := s.ConnString()
	u, err := url.Parse(cs)
	if err != nil {
		t.Fatalf("url.Parse(%q): %v", cs, err)
	}
	pw, _ := u.User.Password()
	got := []string{u.Scheme, u.Hostname(), u.Port(), strings.TrimPrefix(u.Path, "/"), u.User.Username(), pw,
		u.Query().Get("sslmode"), u.Query().Get("application_name")}
	want := []string{"postgres", "db.example.com", "6432", s.Database, s.User, s.Password, "require", "pwb tool&x"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ConnString %q did not round-trip (-want +got):\n%s", cs, diff)
	}
	if !strings.Contains(cs, "pwb%20tool") {
		t.Errorf("ConnString %q encodes a space as +, which pgx reads as a plus", cs)
	}

	if got, want := (Shard{Host: "::1", Port: 5432, Database: "d"}).ConnString(), "postgres://[::1]:5432/d"; got != want {
		t.Errorf("ConnString = %q, want %q", got, want)
	}
	if got, want := (Shard{Host: "/tmp", Port: 5433, Database: "d", User: "u"}).ConnString(), "postgres://u@/d?host=%2Ftmp&port=5433"; got != want {
		t.Errorf("ConnString = %q, want %q", got, want)
	}
	if got, want := s.Addr(), "db.example.com:6432"; got != want {
		t.Errorf("Addr = %q, want %q", got, want)
	}

	m := s.WithDatabase("postgres")
	m.Params["sslmode"] = "disable"
	if m.Database != "postgres" || s.Database == "postgres" || s.Params["sslmode"] != "require" {
		t.Errorf("WithDatabase did not make an independent copy: %+v / %+v", m, s)
	}
	if m.Host != s.Host || m.Password != s.Password {
		t.Errorf("WithDatabase changed the server: %+v", m)
	}
}

func TestConfigAccessors(t *testing.T) {
	c, err := Parse([]byte(seedYAML), file, "production", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"default", "shard_1", "shard_2"}, c.ShardNames()); diff != "" {
		t.Errorf("ShardNames (-want +got):\n%s", diff)
	}
	if p := c.Primary(); p.Key != "primary" || p.Database != "pwb_production_primary" {
		t.Errorf("Primary = %+v", p)
	}
	if s, ok := c.Shard("shard_2"); !ok || s.Database != "pwb_production_premium_shard_2" {
		t.Errorf("Shard(shard_2) = %+v, %v", s, ok)
	}
	if _, ok := c.Shard("primary"); ok {
		t.Error(`Shard("primary") found; the primary is called "default"`)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "database.yml")
	y := seedYAML + "    password: ${PWB_TEST_PASSWORD}\n"
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PWB_TEST_PASSWORD", "from-env")
	c, err := Load(path, "production")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.File != path || len(c.Shards) != 3 || c.Shards[2].Password != "from-env" {
		t.Errorf("Load = %+v", c)
	}

	missing := filepath.Join(dir, "nope.yml")
	_, err = Load(missing, "production")
	if err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
	checkError(t, err)
	if !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "not found") {
		t.Errorf("error %q does not name the missing file", err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %q does not wrap os.ErrNotExist", err)
	}

	_, err = Load(dir, "production") // a directory cannot be read as a file
	if err == nil {
		t.Fatal("Load of a directory succeeded")
	}
	checkError(t, err)
	if !strings.HasPrefix(err.Error(), "reading config file "+dir+": ") {
		t.Errorf("error %q does not name the file", err)
	}
}

// The configuration the project ships must parse: development on the
// loopback ports pwb dev uses, production entirely from the environment.
func TestShippedConfig(t *testing.T) {
	path := filepath.Join("..", "..", "config", "database.yml")
	dev, err := Parse(mustRead(t, path), path, "development", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := dev.ShardNames(); !slices.Equal(got, []string{"default", "shard_1", "shard_2"}) {
		t.Errorf("development shards %v", got)
	}
	for _, s := range dev.Shards {
		if s.Host != "127.0.0.1" || s.Port < 1024 {
			t.Errorf("development shard %s at %s, want a fixed loopback port", s.Name, s.Addr())
		}
	}
	moved, err := Parse(mustRead(t, path), path, "development", env(map[string]string{"PWB_DEV_SHARD_1_PORT": "60001"}))
	if err != nil || moved.Shards[1].Port != 60001 {
		t.Errorf("port override: %v, %v", moved, err)
	}

	_, err = Parse(mustRead(t, path), path, "production", env(nil))
	if err == nil || !strings.Contains(err.Error(), "PWB_PRIMARY_URL") {
		t.Errorf("production without its variables should name the first missing one, got %v", err)
	}
	prod, err := Parse(mustRead(t, path), path, "production", env(map[string]string{
		"PWB_PRIMARY_URL": "postgres://pwb:s3cret@db0.internal:5432/pwb_primary",
		"PWB_SHARD_1_URL": "postgres://pwb:s3cret@db1.internal:5432/pwb_shard_1",
		"PWB_SHARD_2_URL": "postgres://pwb:s3cret@db2.internal:5432/pwb_shard_2",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if p := prod.Primary(); p.Host != "db0.internal" || p.Password != "s3cret" || p.Pool != 20 {
		t.Errorf("production primary %+v", p)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func FuzzParse(f *testing.F) {
	f.Add(seedYAML, "production")
	f.Add("production:\n  primary:\n    url: postgres://u:p@h:1/d?sslmode=require\n  s:\n    <<: *x\n", "production")
	f.Add("a: &a {host: h, database: d}\nproduction:\n  primary: {<<: [*a, *a], port: ${P:-9}}\n  c: {database: c, migrations_paths: [x]}\n  max_connections_total: 3\n", "production")
	f.Add("production:\n  primary:\n    database: ${X\n", "production")
	f.Add("- a\n", "production")
	f.Add("", "")
	f.Add("production: &p\n  primary: &q\n    <<: *q\n    database: d\n", "production")
	vars := env(map[string]string{"P": "5432", "EMPTY": ""})
	f.Fuzz(func(t *testing.T, data, envName string) {
		c, err := Parse([]byte(data), file, envName, vars)
		if err != nil {
			msg := err.Error()
			if strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error has a line break: %q", msg)
			}
			if !strings.HasPrefix(msg, file) {
				t.Fatalf("error does not start with the file name: %q", msg)
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error does not wrap ErrConfig: %q", msg)
			}
			return
		}
		if len(c.Shards) == 0 || c.Shards[0].Name != "default" {
			t.Fatalf("first shard is not the primary: %+v", c.Shards)
		}
		for _, s := range c.Shards {
			if s.Name == "" || s.Database == "" || s.Port < 1 || s.Port > 65535 {
				t.Fatalf("invalid shard %+v", s)
			}
			if _, err := url.Parse(s.ConnString()); err != nil {
				t.Fatalf("ConnString %q does not parse: %v", s.ConnString(), err)
			}
		}
	})
}

func TestErrorIsOneLine(t *testing.T) {
	err := where{file: file, env: "production", entry: "x"}.errorf("a\nb\r\nc")
	if got, want := err.Error(), file+`: environment "production": entry "x": a b c`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	_, err = Parse([]byte(seedYAML), file, "", nil)
	if err == nil || !strings.HasPrefix(err.Error(), file+": no environment selected") {
		t.Errorf("Parse with no environment: %v", err)
	}
}

// replication_url names the direct connection an online move reads changes
// through; without it a pooled entry has none and a direct one uses its own.
func TestReplicationConnString(t *testing.T) {
	y := `production:
  primary: {database: a}
  shard_1:
    database: b
    advisory_locks: false
  shard_2:
    database: c
    port: 6432
    advisory_locks: false
    replication_url: postgres://repl@10.0.0.5:5432/c
`
	c, err := Parse([]byte(y), "database.yml", "production", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Shard{}
	for _, s := range c.Shards {
		byName[s.Name] = s
	}
	if got, ok := byName["default"].ReplicationConnString(); !ok || got != byName["default"].ConnString() {
		t.Errorf("direct entry: %q, %v; want its own connection", got, ok)
	}
	if got, ok := byName["shard_1"].ReplicationConnString(); ok {
		t.Errorf("pooled entry without replication_url: %q; want none", got)
	}
	if got, ok := byName["shard_2"].ReplicationConnString(); !ok || got != "postgres://repl@10.0.0.5:5432/c" {
		t.Errorf("pooled entry with replication_url: %q, %v", got, ok)
	}
}
