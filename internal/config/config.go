package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ErrConfig is wrapped by every error this package returns, so callers can
// tell a bad configuration (exit and show the message) from other failures.
var ErrConfig = errors.New("config")

// Shard is one configured database. Name is the logical shard name: "default"
// for the primary entry, else the YAML key.
type Shard struct {
	Name     string
	Key      string
	Host     string
	Port     int
	Database string
	User     string
	Password string
	Params   map[string]string
	Pool     int // 0 = not set
	// IdleTimeout (Rails' idle_timeout) is how long a connection may sit
	// unused before it is closed, so a shard nobody uses holds none. 0 = not
	// set.
	IdleTimeout time.Duration
	// CheckoutTimeout (Rails' checkout_timeout) bounds the wait for a
	// connection of this shard; a request that waits longer gets a 503.
	// 0 = not set.
	CheckoutTimeout time.Duration
	// PreparedStatements false (Rails' prepared_statements) makes pwb send
	// no named prepared statements, for PgBouncer in transaction mode
	// before 1.21. nil = not set (true).
	PreparedStatements *bool
	// AdvisoryLocks false (Rails' advisory_locks) makes schema migrations
	// lock with a table row instead of a session advisory lock, which a
	// transaction pooler would leave on a server connection. nil = true.
	AdvisoryLocks *bool
	// ReplicationURL is a direct connection to the shard's server for
	// logical replication, which online moves read their changes from: a
	// transaction pooler cannot carry one, and the role may differ (it
	// needs the REPLICATION attribute). Empty = the entry's own connection,
	// unless that goes through a pooler.
	ReplicationURL  string
	MigrationsPaths []string
	Line            int // line of the entry's key, for messages
}

// ThroughPooler reports whether the entry says it is reached through a
// transaction pooler: advisory_locks: false, as Rails apps behind PgBouncer
// set it. pwb then keeps no session state there: migrations lock with a
// table row, and on primary nothing LISTENs.
func (s Shard) ThroughPooler() bool { return s.AdvisoryLocks != nil && !*s.AdvisoryLocks }

// ReplicationConnString returns the connection string for logical
// replication from this shard, and false when there is none: the entry goes
// through a pooler and names no replication_url.
func (s Shard) ReplicationConnString() (string, bool) {
	switch {
	case s.ReplicationURL != "":
		return s.ReplicationURL, true
	case s.ThroughPooler():
		return "", false
	}
	return s.ConnString(), true
}

// Addr returns "host:port".
func (s Shard) Addr() string {
	return net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// ConnString returns a postgres:// URL that pgx accepts. Absent params are
// left out so pgx's own defaults (e.g. sslmode=prefer) apply.
func (s Shard) ConnString() string {
	q := url.Values{}
	for k, v := range s.Params {
		q.Set(k, v)
	}
	u := url.URL{Scheme: "postgres", Path: "/" + s.Database}
	if strings.HasPrefix(s.Host, "/") {
		// A Unix socket directory (valid in Rails) cannot be a URL host;
		// pgx reads it from the query instead.
		q.Set("host", s.Host)
		q.Set("port", strconv.Itoa(s.Port))
	} else {
		u.Host = s.Addr()
	}
	switch {
	case s.Password != "":
		u.User = url.UserPassword(s.User, s.Password)
	case s.User != "":
		u.User = url.User(s.User)
	}
	// pgx decodes the query like libpq, where "+" is a plus, not a space.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String()
}

// WithDatabase returns a copy of s pointing at another database on the same
// server, e.g. the "postgres" maintenance database for CREATE DATABASE.
func (s Shard) WithDatabase(db string) Shard {
	s.Database = db
	s.Params = maps.Clone(s.Params)
	s.MigrationsPaths = slices.Clone(s.MigrationsPaths)
	return s
}

// Config is one environment of a database.yml.
type Config struct {
	File                string
	Env                 string
	Shards              []Shard  // primary ("default") first, then file order
	Replicas            []Shard  // entries with replica: true; reserved, not shards
	Ignored             []string // keys of entries that are not tenant shards
	MaxConnectionsTotal int      // 0 = not set
}

// Shard returns the shard with the given logical name.
func (c *Config) Shard(name string) (Shard, bool) {
	for _, s := range c.Shards {
		if s.Name == name {
			return s, true
		}
	}
	return Shard{}, false
}

// Primary returns the "default" shard, which Parse guarantees exists.
func (c *Config) Primary() Shard { return c.Shards[0] }

// ShardNames returns the logical shard names, "default" first.
func (c *Config) ShardNames() []string {
	names := make([]string, len(c.Shards))
	for i, s := range c.Shards {
		names[i] = s.Name
	}
	return names
}

// Load reads path and parses environment env, expanding ${VAR} from the
// process environment.
func Load(path, env string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &configError{fmt.Sprintf("config file %s not found (set --config or PWB_CONFIG)", path), err}
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is already in our message
		}
		return nil, &configError{fmt.Sprintf("reading config file %s: %v", path, err), err}
	}
	return Parse(data, path, env, os.LookupEnv)
}

var (
	entryNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	varNameRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	yamlLineRE  = regexp.MustCompile(`^yaml: line (\d+): `)
)

// Parse parses environment env of a database.yml held in data; file is used
// only in messages. lookup resolves ${VAR} references.
func Parse(data []byte, file, env string, lookup func(string) (string, bool)) (*Config, error) {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	w := where{file: file}
	envs, empty, err := environments(w, data)
	if err != nil {
		return nil, err
	}
	if empty {
		return nil, w.errorf("the file is empty")
	}
	w.env = env
	envKey, envNode, err := selectEnv(w, envs)
	if err != nil {
		return nil, err
	}
	entries, err := pairs(w, envNode)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(entries, func(f field) bool { return f.key.Value == "primary" }) {
		hint := ""
		if slices.ContainsFunc(entries, func(f field) bool { return f.key.Value == "database" || f.key.Value == "url" }) {
			hint = " (this looks like a single-database environment; pwb needs the multi-database format with a primary: entry)"
		}
		return nil, w.at(envKey).errorf(`no "primary" entry%s`, hint)
	}

	cfg := &Config{File: file, Env: env, Shards: []Shard{{}}}
	for _, e := range entries {
		name := e.key.Value
		v := deref(e.val)
		ew := w.at(e.key)
		if name == "max_connections_total" && v.Kind == yaml.ScalarNode {
			n, err := intValue(ew, "max_connections_total", v, lookup)
			if err != nil {
				return nil, err
			}
			if n < 0 {
				return nil, ew.errorf("max_connections_total: must not be negative, got %d", n)
			}
			cfg.MaxConnectionsTotal = n
			continue
		}
		ew.entry = name
		if name == "default" {
			return nil, ew.errorf(`the name "default" is reserved for the primary entry`)
		}
		if !entryNameRE.MatchString(name) {
			return nil, ew.errorf("invalid entry name: use lower-case letters, digits and _, starting with a letter, at most 63 characters")
		}
		s, replica, err := parseEntry(ew, v, lookup)
		if err != nil {
			return nil, err
		}
		s.Key, s.Name, s.Line = name, name, e.key.Line
		switch {
		case name == "primary":
			if replica {
				return nil, ew.errorf("the primary entry cannot be a replica")
			}
			s.Name = "default"
			cfg.Shards[0] = s
		case replica:
			cfg.Replicas = append(cfg.Replicas, s)
		case s.MigrationsPaths != nil && !slices.ContainsFunc(s.MigrationsPaths, func(p string) bool { return strings.Contains(p, "tenant") }):
			// Rails apps keep e.g. a cache or queue database next to the
			// shards; its own migrations_paths is how we recognise it.
			cfg.Ignored = append(cfg.Ignored, name)
		default:
			cfg.Shards = append(cfg.Shards, s)
		}
	}
	// Two shards on one database would let a move "copy" a tenant onto
	// itself and then delete the source: refuse the configuration instead.
	seen := map[string]Shard{}
	for _, s := range cfg.Shards {
		key := s.Addr() + "/" + s.Database
		if prev, ok := seen[key]; ok {
			return nil, w.errorf("entries %q (line %d) and %q (line %d) both use database %s on %s: each shard needs its own database",
				prev.Key, prev.Line, s.Key, s.Line, s.Database, s.Addr())
		}
		seen[key] = s
	}
	return cfg, nil
}

// environments parses a YAML file of environments (database.yml, pwb.yml)
// and returns its top-level pairs, or empty when the file holds nothing.
func environments(w where, data []byte) (envs []field, empty bool, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := err.Error()
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			w.line, _ = strconv.Atoi(m[1])
			msg = msg[len(m[0]):]
		}
		return nil, false, w.errorf("YAML syntax error: %s", strings.TrimPrefix(msg, "yaml: "))
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = deref(root.Content[0])
	}
	if root.Kind == 0 || root.Kind == yaml.DocumentNode || isNull(root) {
		return nil, true, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, false, w.at(root).errorf("the top level must be a mapping of environments, not %s", kindName(root))
	}
	envs, err = pairs(w, root)
	return envs, false, err
}

// selectEnv finds environment w.env among the top-level pairs and returns
// its key and its (non-empty mapping) value.
func selectEnv(w where, envs []field) (key, val *yaml.Node, err error) {
	top := w
	top.env = ""
	if w.env == "" {
		return nil, nil, top.errorf("no environment selected")
	}
	var have []string
	for _, f := range envs {
		if f.key.Value == w.env {
			key, val = f.key, deref(f.val)
		}
		// "default" is Rails' conventional anchor holder, not an environment.
		if f.key.Value != "default" && deref(f.val).Kind == yaml.MappingNode {
			have = append(have, f.key.Value)
		}
	}
	if key == nil {
		list := strings.Join(have, ", ")
		if list == "" {
			list = "none"
		}
		return nil, nil, top.errorf("environment %q not found (have: %s)", w.env, list)
	}
	if isNull(val) {
		return nil, nil, w.at(key).errorf("has no entries")
	}
	if val.Kind != yaml.MappingNode {
		return nil, nil, w.at(val).errorf("must be a mapping of database entries, not %s", kindName(val))
	}
	return key, val, nil
}

// Keys pwb reads; anything else is a Rails setting pwb has no use for.
var scalarKeys = map[string]bool{
	"adapter": true, "url": true, "host": true, "port": true, "database": true,
	"username": true, "password": true, "pool": true, "sslmode": true, "replica": true,
	"idle_timeout": true, "checkout_timeout": true, "prepared_statements": true, "advisory_locks": true,
	"replication_url": true,
}

// Rails-only settings that may appear in a url's query; pgx would send them
// to the server as run-time parameters, which it would reject.
var railsURLParams = map[string]bool{
	"adapter": true, "encoding": true, "timeout": true, "schema_search_path": true,
	"prepared_statements": true, "advisory_locks": true, "checkout_timeout": true,
	"reaping_frequency": true, "idle_timeout": true, "migrations_paths": true, "replica": true,
}

func parseEntry(w where, n *yaml.Node, lookup func(string) (string, bool)) (s Shard, replica bool, err error) {
	if isNull(n) {
		return s, false, w.errorf("the entry is empty")
	}
	if n.Kind != yaml.MappingNode {
		return s, false, w.errorf("must be a mapping, not %s", kindName(n))
	}
	fields, err := pairs(w, n)
	if err != nil {
		return s, false, err
	}
	vals := map[string]string{}
	nodes := map[string]*yaml.Node{}
	for _, f := range fields {
		key, v := f.key.Value, deref(f.val)
		fw := w.at(v)
		fw.field = key
		switch {
		case scalarKeys[key]:
			if v.Kind != yaml.ScalarNode {
				return s, false, fw.errorf("must be a single value, not %s", kindName(v))
			}
			if vals[key], err = expand(fw, v, lookup); err != nil {
				return s, false, err
			}
			nodes[key] = v
		case key == "migrations_paths":
			items := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				items = v.Content
			}
			for _, it := range items {
				it = deref(it)
				if it.Kind != yaml.ScalarNode {
					return s, false, fw.errorf("must be a path or a list of paths")
				}
				p, err := expand(fw, it, lookup)
				if err != nil {
					return s, false, err
				}
				if p != "" {
					s.MigrationsPaths = append(s.MigrationsPaths, p)
				}
			}
		default:
			// Not used by pwb, but a broken ${...} is still a mistake worth
			// reporting rather than something to trip over later.
			if err := expandAll(fw, f.val, lookup); err != nil {
				return s, false, err
			}
		}
	}
	fw := func(key string) where {
		fw := w.at(nodes[key])
		fw.field = key
		return fw
	}

	if a := vals["adapter"]; a != "" && a != "postgresql" && a != "postgis" && a != "postgres" {
		return s, false, fw("adapter").errorf("pwb supports only PostgreSQL (got adapter %q)", a)
	}
	if r := vals["replica"]; r != "" {
		if replica, err = parseBool(r); err != nil {
			return s, false, fw("replica").errorf("%v", err)
		}
	}
	if p := vals["pool"]; p != "" {
		if s.Pool, err = strconv.Atoi(p); err != nil || s.Pool < 0 {
			return s, false, fw("pool").errorf("must be a non-negative integer, got %q", p)
		}
	}
	// In a fixed order, so that of two bad fields the same one is named
	// every time.
	for _, f := range []struct {
		key string
		d   *time.Duration
	}{{"idle_timeout", &s.IdleTimeout}, {"checkout_timeout", &s.CheckoutTimeout}} {
		if v := vals[f.key]; v != "" {
			if *f.d, err = seconds(v); err != nil {
				return s, false, fw(f.key).errorf("%v", err)
			}
		}
	}
	for _, f := range []struct {
		key string
		b   **bool
	}{{"prepared_statements", &s.PreparedStatements}, {"advisory_locks", &s.AdvisoryLocks}} {
		if v := vals[f.key]; v != "" {
			on, err := parseBool(v)
			if err != nil {
				return s, false, fw(f.key).errorf("%v", err)
			}
			*f.b = &on
		}
	}
	if m := vals["sslmode"]; m != "" {
		s.Params = map[string]string{"sslmode": m}
	}
	if raw := vals["replication_url"]; raw != "" {
		var direct Shard
		if err := applyURL(&direct, raw); err != nil {
			return s, false, fw("replication_url").errorf("malformed URL %q: %v", redactURL(raw), err)
		}
		s.ReplicationURL = raw
	}
	if raw := vals["url"]; raw != "" {
		// As in Rails, the url wins over the discrete keys, which often
		// arrive through <<: *default.
		if err := applyURL(&s, raw); err != nil {
			return s, false, fw("url").errorf("malformed URL %q: %v", redactURL(raw), err)
		}
	} else {
		s.Host, s.Database, s.User, s.Password = vals["host"], vals["database"], vals["username"], vals["password"]
		if p := vals["port"]; p != "" {
			if s.Port, err = strconv.Atoi(p); err != nil || s.Port < 1 || s.Port > 65535 {
				return s, false, fw("port").errorf("must be an integer from 1 to 65535, got %q", p)
			}
		}
		if s.Database == "" {
			return s, false, w.errorf("needs a url or a database")
		}
	}
	if s.Host == "" {
		s.Host = "127.0.0.1"
	}
	if s.Port == 0 {
		s.Port = 5432
	}
	return s, replica, nil
}

// seconds reads a timeout as Rails writes it, a number of seconds (5,
// 0.5), or as a Go duration (500ms, 2m). It must be positive.
func seconds(v string) (time.Duration, error) {
	var d time.Duration
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		d = time.Duration(f * float64(time.Second))
	} else if d, err = time.ParseDuration(v); err != nil {
		return 0, fmt.Errorf("want a number of seconds (5, 0.5) or a duration (500ms, 2m), got %q", v)
	}
	if d <= 0 {
		return 0, fmt.Errorf("must be positive, got %q", v)
	}
	return d, nil
}

// applyURL fills s from a postgres URL. Its errors never quote the URL, which
// may hold a password.
func applyURL(s *Shard, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's own messages can quote parts of an unescaped password.
		return errors.New("cannot be parsed (percent-encode special characters in the user name and password)")
	}
	switch {
	case u.Scheme == "":
		return errors.New("missing scheme (want postgres:// or postgresql://)")
	case u.Scheme != "postgres" && u.Scheme != "postgresql":
		return fmt.Errorf("unsupported scheme %q (want postgres:// or postgresql://)", u.Scheme)
	case u.Opaque != "" || u.Hostname() == "":
		return errors.New("no host")
	case strings.Contains(u.Host, ","):
		return errors.New("multiple hosts are not supported")
	}
	s.Host = u.Hostname()
	if p := u.Port(); p != "" {
		if s.Port, err = strconv.Atoi(p); err != nil || s.Port < 1 || s.Port > 65535 {
			return fmt.Errorf("port must be from 1 to 65535, got %q", p)
		}
	}
	s.Database = strings.TrimPrefix(u.Path, "/")
	if s.Database == "" {
		return errors.New("no database name")
	}
	if u.User != nil {
		s.User = u.User.Username()
		s.Password, _ = u.User.Password()
	}
	// Read "+" as a plus, as pgx and libpq do.
	q, err := url.ParseQuery(strings.ReplaceAll(u.RawQuery, "+", "%2B"))
	if err != nil {
		return errors.New("invalid query string")
	}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		v := q.Get(k)
		switch {
		case k == "pool":
			if s.Pool, err = strconv.Atoi(v); err != nil || s.Pool < 0 {
				return fmt.Errorf("pool must be a non-negative integer, got %q", v)
			}
		case railsURLParams[k]:
		default:
			if s.Params == nil {
				s.Params = map[string]string{}
			}
			s.Params[k] = v
		}
	}
	return nil
}

// redactURL hides the password and query (which may also carry one) of a URL
// that did not parse, so it is safe to quote.
func redactURL(raw string) string {
	prefix, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	// The last @ ends the user info even when an unescaped password has one.
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		if c := strings.IndexByte(rest[:at], ':'); c >= 0 {
			rest = rest[:c+1] + "xxxxx" + rest[at:]
		}
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest = rest[:i] + "?..."
	}
	return prefix + rest
}

// expand replaces ${VAR} and ${VAR:-default} in a scalar. Its errors never
// quote the value, which may be a password.
func expand(w where, n *yaml.Node, lookup func(string) (string, bool)) (string, error) {
	if isNull(n) {
		return "", nil
	}
	s := n.Value
	if hasERB(s) {
		// Rails evaluates ERB here; taking it literally would, say, connect
		// to a database named "<%= ENV['DB'] %>".
		return "", w.errorf("ERB (<%%= ... %%>) is not supported; use ${NAME} or ${NAME:-default}")
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		s = s[i+2:]
		j := strings.IndexByte(s, '}')
		if j < 0 {
			return "", w.errorf("unterminated ${ (missing })")
		}
		name, def, hasDef := strings.Cut(s[:j], ":-")
		s = s[j+1:]
		if !varNameRE.MatchString(name) {
			return "", w.errorf("invalid variable reference: want ${NAME} or ${NAME:-default} with NAME made of letters, digits and _")
		}
		v, ok := lookup(name)
		if hasDef && v == "" {
			v = def
		} else if !ok {
			return "", w.errorf("${%s} is not set and has no default", name)
		}
		b.WriteString(v)
	}
}

// expandAll checks the ${...} references of a value pwb otherwise ignores.
// Aliases are not followed: their targets are checked where they appear, and
// following them could take exponential time.
func expandAll(w where, n *yaml.Node, lookup func(string) (string, bool)) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if hasERB(n.Value) {
			return nil // only Rails would see the difference
		}
		_, err := expand(w.at(n), n, lookup)
		return err
	case yaml.SequenceNode, yaml.MappingNode:
		for i, c := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 {
				continue // keys are not expanded
			}
			if err := expandAll(w, c, lookup); err != nil {
				return err
			}
		}
	}
	return nil
}

func hasERB(s string) bool {
	i := strings.Index(s, "<%")
	return i >= 0 && strings.Contains(s[i:], "%>")
}

func intValue(w where, field string, n *yaml.Node, lookup func(string) (string, bool)) (int, error) {
	w = w.at(n)
	w.field = field
	s, err := expand(w, n, lookup)
	if err != nil || s == "" {
		return 0, err
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, w.errorf("must be an integer, got %q", s)
	}
	return v, nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("must be true or false, got %q", s)
}

type field struct{ key, val *yaml.Node }

// pairs returns the key/value pairs of mapping m with YAML merge keys
// (<<: *a, <<: [*a, *b]) applied: keys written in m win over merged ones,
// and earlier merged mappings win over later ones. We merge by hand rather
// than decoding into a map so every value keeps its node and line number.
func pairs(w where, m *yaml.Node) ([]field, error) {
	var out []field
	seen := map[string]bool{}
	visited := map[*yaml.Node]bool{}
	var walk func(m *yaml.Node, top bool) error
	walk = func(m *yaml.Node, top bool) error {
		// A mapping merged twice (or into itself) adds nothing new, so
		// skipping it keeps hostile alias graphs linear and cycle-free.
		if visited[m] {
			return nil
		}
		visited[m] = true
		var merges []*yaml.Node
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
				merges = append(merges, v)
				continue
			}
			if k.Kind != yaml.ScalarNode {
				return w.at(k).errorf("keys must be plain strings, not %s", kindName(k))
			}
			if seen[k.Value] {
				if top {
					return w.at(k).errorf("key %q is defined twice", k.Value)
				}
				continue
			}
			seen[k.Value] = true
			out = append(out, field{k, v})
		}
		for _, mv := range merges {
			mv = deref(mv)
			srcs := []*yaml.Node{mv}
			if mv.Kind == yaml.SequenceNode {
				srcs = mv.Content
			}
			for _, src := range srcs {
				src = deref(src)
				if src.Kind != yaml.MappingNode {
					return w.at(src).errorf("<< must merge a mapping or a list of mappings, not %s", kindName(src))
				}
				if err := walk(src, false); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return out, walk(m, true)
}

func deref(n *yaml.Node) *yaml.Node {
	// The parser only creates aliases to non-alias nodes, but stay bounded.
	for i := 0; i < 8 && n.Kind == yaml.AliasNode && n.Alias != nil; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch {
	case isNull(n):
		return "null"
	case n.Kind == yaml.ScalarNode:
		return "a single value"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	}
	return "an unexpected node"
}

// where is the position an error is about; it renders as
// `file:line: environment "env": entry "key": field: `.
type where struct {
	file, env, entry, field string
	line                    int
}

func (w where) at(n *yaml.Node) where {
	if n != nil && n.Line > 0 {
		w.line = n.Line
	}
	return w
}

func (w where) errorf(format string, args ...any) error {
	var b strings.Builder
	b.WriteString(w.file)
	if w.line > 0 {
		fmt.Fprintf(&b, ":%d", w.line)
	}
	b.WriteString(": ")
	if w.env != "" {
		fmt.Fprintf(&b, "environment %q: ", w.env)
	}
	if w.entry != "" {
		fmt.Fprintf(&b, "entry %q: ", w.entry)
	}
	if w.field != "" {
		fmt.Fprintf(&b, "%s: ", w.field)
	}
	fmt.Fprintf(&b, format, args...)
	return &configError{msg: b.String()}
}

type configError struct {
	msg string
	err error
}

func (e *configError) Error() string {
	// Messages end up in single-line log records.
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(e.msg)
}

func (e *configError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrConfig}
	}
	return []error{ErrConfig, e.err}
}
