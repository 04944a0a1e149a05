package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// usersTable is every user with role and password hash, to see that a
// refused command changed nothing.
func usersTable(t *testing.T, c *pgtest.Cluster) string {
	t.Helper()
	return pgtest.QueryValue[string](t, c.URL[shard.Default],
		"SELECT COALESCE(string_agg(id || ':' || email || ':' || COALESCE(platform_role, '-') || ':' || password_hash, ',' ORDER BY id), '') FROM users")
}

func TestUsersCreateAdmin_CreatesASuperAdmin(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 0)
	env := map[string]string{"PWB_ENV": "test", "PWB_CONFIG": c.ConfigPath}

	r := pwbInput(env, "root-password\n", "users", "create-admin", "--email", " Root@Example.com")
	want := "Created super-admin root@example.com (user 1). Sign in at /admin on the platform's own host, e.g. http://localhost:3000/admin\n"
	if r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Fatalf("create-admin: exit %d\nstdout %q\nwant   %q\nstderr %q", r.code, r.stdout, want, r.stderr)
	}
	if role := pgtest.QueryValue[string](t, c.URL[shard.Default], "SELECT platform_role FROM users WHERE id = 1"); role != account.RoleSuperAdmin {
		t.Errorf("platform_role %q; want %q", role, account.RoleSuperAdmin)
	}
	pool, err := pgxpool.New(context.Background(), c.URL[shard.Default])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if u, err := account.AuthenticatePlatform(context.Background(), pool, "root@example.com", "root-password"); err != nil || u.ID != 1 {
		t.Errorf("signing in with the password given on stdin: %+v, %v", u, err)
	}
	if _, err := account.AuthenticatePlatform(context.Background(), pool, "root@example.com", "root-password\n"); err != account.ErrBadCredentials {
		t.Errorf("the stored password should not include the newline: %v", err)
	}

	// --json, and a password line ending in CRLF.
	r = pwbInput(env, "second-password\r\n", "users", "create-admin", "--email", "second@example.com", "--json")
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); r.code != 0 || err != nil {
		t.Fatalf("create-admin --json: exit %d, %v\nstdout %q\nstderr %q", r.code, err, r.stdout, r.stderr)
	}
	if len(got) != 2 || got["id"] != float64(2) || got["email"] != "second@example.com" {
		t.Errorf("create-admin --json printed %v; want {id: 2, email: second@example.com}", got)
	}
	if _, err := account.AuthenticatePlatform(context.Background(), pool, "second@example.com", "second-password"); err != nil {
		t.Errorf("signing in as the second super-admin: %v", err)
	}
}

func TestUsersCreateAdmin_Refusals(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 0)
	env := map[string]string{"PWB_ENV": "test", "PWB_CONFIG": c.ConfigPath}
	mustPWB(t, c.ConfigPath, "tenants", "create", "--subdomain", "acme", "--name", "Acme")
	if r := pwbInput(env, "site-password\n", "tenants", "add-member", "acme", "--email", "ann@example.com"); r.code != 0 {
		t.Fatalf("add-member: %+v", r)
	}
	if r := pwbInput(env, "root-password\n", "users", "create-admin", "--email", "root@example.com"); r.code != 0 {
		t.Fatalf("create-admin: %+v", r)
	}
	before := usersTable(t, c)

	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"no email", "good-password\n", nil, ExitUsage, "--email is required"},
		{"malformed email", "good-password\n", []string{"--email", "not-an-email"}, ExitUsage, "give one plain address such as name@example.com"},
		{"a display name", "good-password\n", []string{"--email", "Bob <bob@example.com>"}, ExitUsage, "give one plain address"},
		{"an argument", "good-password\n", []string{"bob@example.com"}, ExitUsage, "takes 0 argument(s)"},
		{"a password flag", "", []string{"--email", "bob@example.com", "--password", "x"}, ExitUsage, "unknown flag: --password"},
		{"empty stdin", "", []string{"--email", "bob@example.com"}, ExitFailed, "no password given on standard input"},
		{"empty line", "\n", []string{"--email", "bob@example.com"}, ExitFailed, "no password given on standard input"},
		{"short password", "1234567\n", []string{"--email", "bob@example.com"}, ExitUsage, "password: must be at least 8 characters"},
		{"long password", strings.Repeat("p", 73) + "\n", []string{"--email", "bob@example.com"}, ExitUsage, "password: must be at most 72 bytes"},
		{"a site admin's email", "good-password\n", []string{"--email", "ANN@example.com"}, ExitFailed,
			"ann@example.com is already the email of user 1: a platform login must be an account of its own, so use another email, such as ann+platform@example.com"},
		{"a super-admin's email", "good-password\n", []string{"--email", "root@example.com"}, ExitFailed, "already the email of user 2"},
		// Refused before asking for a password that would be thrown away.
		{"a used email, no password", "", []string{"--email", "ann@example.com"}, ExitFailed, "already the email of user 1"},
	} {
		r := pwbInput(env, tc.stdin, append([]string{"users", "create-admin"}, tc.args...)...)
		if tc.code == ExitFailed {
			t.Run(tc.name, func(t *testing.T) { wantRefused(t, r, tc.want) })
		} else {
			t.Run(tc.name, func(t *testing.T) { wantUsage(t, r, tc.want) })
		}
	}
	for _, args := range [][]string{{"users"}, {"users", "bogus"}} {
		if r := pwb(t, c.ConfigPath, args...); r.code != ExitUsage || !strings.Contains(r.stderr, "create-admin") {
			t.Errorf("pwb %v: exit %d, stderr %q; want usage naming create-admin", args, r.code, r.stderr)
		}
	}
	if after := usersTable(t, c); after != before {
		t.Errorf("refusals changed the users table:\nbefore %s\nafter  %s", before, after)
	}
}
