package pglocal

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// ErrNoBinaries means no PostgreSQL server binaries were found on this machine.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin or on PATH")

// User is the database superuser every local server is initialised with.
// Authentication is trust on loopback only.
const User = "pwb"

// Options describe one local server.
type Options struct {
	// Dir holds the server: Dir/data is the data folder, Dir/server.log its log.
	Dir string
	// Port to listen on 127.0.0.1; 0 picks a free port at every start.
	Port int
	// ForTests trades durability for speed (fsync off). Never for the dev platform.
	ForTests bool
	// MaxConnections overrides PostgreSQL's max_connections when > 0.
	MaxConnections int
	// WalLevel is the server's wal_level. Empty means "logical", which every
	// server pwb starts runs with: an online tenant move streams the
	// tenant's changes from its source shard through logical decoding
	// (internal/changes), which needs it. max_replication_slots and
	// max_wal_senders keep PostgreSQL's defaults (10 each); a move takes two
	// of each at most. Tests set "replica" to see how pwb reports a shard
	// that cannot do online moves.
	WalLevel string
}

// Server is one local PostgreSQL instance.
type Server struct {
	opts Options
	bin  string
	port int
}

// BinDir, when set, is the folder of the server binaries to use instead of
// searching for them (for a machine with several PostgreSQL versions).
var BinDir string

// FindBinaries returns the folder holding initdb and pg_ctl: BinDir if set,
// else the newest version under /usr/lib/postgresql, then PATH.
func FindBinaries() (string, error) {
	if BinDir != "" {
		if isExec(filepath.Join(BinDir, "initdb")) && isExec(filepath.Join(BinDir, "pg_ctl")) {
			return BinDir, nil
		}
		return "", fmt.Errorf("%w (looked in %s)", ErrNoBinaries, BinDir)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// New prepares a server in opts.Dir, running initdb if the data folder is not
// initialised yet. An existing data folder is reused as it is.
func New(ctx context.Context, opts Options) (*Server, error) {
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	if opts.Dir, err = filepath.Abs(opts.Dir); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, bin: bin}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", opts.Dir, err)
	}
	if _, err := os.Stat(filepath.Join(s.DataDir(), "PG_VERSION")); err == nil {
		return s, nil
	}
	if err := s.mkdirOwned(s.DataDir(), 0o700); err != nil {
		return nil, err
	}
	out, err := s.run(ctx, "initdb", "-D", s.DataDir(), "-U", User, "--auth=trust",
		"--no-locale", "-E", "UTF8", "--no-sync")
	if err != nil {
		return nil, fmt.Errorf("initdb in %s: %w: %s", s.DataDir(), err, lastLine(out))
	}
	conf := filepath.Join(s.DataDir(), "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.WriteString("\ninclude_if_exists = 'pwb.conf'\n"); err != nil {
		return nil, err
	}
	return s, nil
}

// Adopt wraps an already initialised data folder (for example a copy of a
// template) without running initdb.
func Adopt(opts Options) (*Server, error) {
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	if opts.Dir, err = filepath.Abs(opts.Dir); err != nil {
		return nil, err
	}
	return &Server{opts: opts, bin: bin}, nil
}

// DataDir is the PostgreSQL data folder.
func (s *Server) DataDir() string { return filepath.Join(s.opts.Dir, "data") }

// LogFile is where the server writes its log.
func (s *Server) LogFile() string { return filepath.Join(s.opts.Dir, "server.log") }

// Port the server listens on (valid after Start).
func (s *Server) Port() int { return s.port }

// Host the server listens on.
func (s *Server) Host() string { return "127.0.0.1" }

// URL returns a connection URL for database db.
func (s *Server) URL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User(User), Host: net.JoinHostPort(s.Host(), strconv.Itoa(s.port)), Path: "/" + db}
	u.RawQuery = "sslmode=disable"
	return u.String()
}

// Start starts the server and waits until it accepts connections. With Port 0
// a free port is chosen, and another one tried if it was taken meanwhile; a
// server that ran before starts again on its old port, so its clients find it.
func (s *Server) Start(ctx context.Context) error {
	fixed := s.opts.Port
	if fixed == 0 {
		fixed = s.port
	}
	tries := 1
	if fixed == 0 {
		tries = 5
	}
	var err error
	for i := 0; i < tries; i++ {
		port := fixed
		if port == 0 {
			if port, err = freePort(); err != nil {
				return err
			}
		}
		if err = s.startOn(ctx, port); err == nil {
			s.port = port
			return nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return err
}

func (s *Server) startOn(ctx context.Context, port int) error {
	settings := []string{
		fmt.Sprintf("port = %d", port),
		"listen_addresses = '127.0.0.1'",
		"unix_socket_directories = ''",
		"logging_collector = off",
		"wal_level = " + s.walLevel(),
	}
	if s.opts.MaxConnections > 0 {
		settings = append(settings, fmt.Sprintf("max_connections = %d", s.opts.MaxConnections))
	}
	if s.opts.ForTests {
		settings = append(settings, "fsync = off", "synchronous_commit = off", "full_page_writes = off",
			"shared_buffers = 32MB", "max_wal_size = 256MB")
	}
	if err := os.WriteFile(filepath.Join(s.DataDir(), "pwb.conf"), []byte(strings.Join(settings, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing server settings: %w", err)
	}
	if err := s.chown(filepath.Join(s.DataDir(), "pwb.conf")); err != nil {
		return err
	}
	if err := s.touchOwned(s.LogFile()); err != nil {
		return err
	}
	var logStart int64
	if st, err := os.Stat(s.LogFile()); err == nil {
		logStart = st.Size()
	}
	out, err := s.run(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", s.DataDir(), "-l", s.LogFile())
	if err != nil {
		reason := s.logReason(logStart)
		if reason == "" {
			reason = lastLine(out)
		}
		return fmt.Errorf("starting PostgreSQL on port %d: %s (log: %s)", port, reason, s.LogFile())
	}
	return nil
}

// walLevel is the wal_level the server runs with: Options.WalLevel, else
// logical.
func (s *Server) walLevel() string {
	if s.opts.WalLevel == "" {
		return "logical"
	}
	return s.opts.WalLevel
}

// logReason finds why a start failed in what the server logged since
// offset: a port already taken, else the first fatal error.
func (s *Server) logReason(offset int64) string {
	data, err := os.ReadFile(s.LogFile())
	if err != nil || int64(len(data)) < offset {
		return ""
	}
	var fatal string
	for _, line := range strings.Split(string(data[offset:]), "\n") {
		_, msg, ok := strings.Cut(line, "]")
		msg = strings.TrimSpace(msg)
		switch {
		case !ok:
		case strings.Contains(msg, "could not bind"):
			return strings.TrimSpace(strings.TrimPrefix(msg, "LOG:")) + " (is something else using the port?)"
		case fatal == "" && strings.HasPrefix(msg, "FATAL:"):
			fatal = msg
		}
	}
	return fatal
}

// Stop stops the server: fast (clean checkpoint) for a kept data folder,
// immediate when the data is about to be thrown away.
func (s *Server) Stop(ctx context.Context, immediate bool) error {
	mode := "fast"
	if immediate {
		mode = "immediate"
	}
	out, err := s.run(ctx, "pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", s.DataDir())
	if err != nil {
		if strings.Contains(string(out), "Is server running?") {
			return nil
		}
		return fmt.Errorf("stopping PostgreSQL in %s: %w: %s", s.DataDir(), err, lastLine(out))
	}
	return nil
}

// Running reports whether a server is running on the data folder.
func (s *Server) Running(ctx context.Context) bool {
	_, err := s.run(ctx, "pg_ctl", "status", "-D", s.DataDir())
	return err == nil
}

// run executes a server binary, as the postgres system user when we are root.
func (s *Server) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC")
	if as, err := serverUser(); err != nil {
		return nil, err
	} else if as != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: as.cred}
		cmd.Dir = as.home
	}
	// The server outlives this command (pg_ctl daemonises it); reading only
	// from a file keeps us from waiting on the server's inherited pipes.
	f, err := os.CreateTemp("", "pglocal-*.out")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	runErr := cmd.Run()
	out, _ := os.ReadFile(f.Name())
	return out, runErr
}

type systemUser struct {
	cred *syscall.Credential
	home string
}

// serverUser is the postgres system user when running as root, nil otherwise.
var serverUser = sync.OnceValues(func() (*systemUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New("running as root, but there is no `postgres` system user to run PostgreSQL as (PostgreSQL refuses root); install the postgresql package or run as another user")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	home := u.HomeDir
	if st, err := os.Stat(home); err != nil || !st.IsDir() {
		home = "/"
	}
	return &systemUser{&syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, home}, nil
})

func (s *Server) chown(path string) error {
	as, err := serverUser()
	if err != nil || as == nil {
		return err
	}
	if err := os.Chown(path, int(as.cred.Uid), int(as.cred.Gid)); err != nil {
		return fmt.Errorf("handing %s to the postgres user: %w", path, err)
	}
	return nil
}

func (s *Server) mkdirOwned(path string, mode os.FileMode) error {
	if err := os.MkdirAll(path, mode); err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	return s.chown(path)
}

func (s *Server) touchOwned(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	f.Close()
	return s.chown(path)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Reachable reports whether the user the server runs as can reach dir: every
// parent folder must be searchable by it, which a home folder such as /root
// is not. Folders that do not exist yet are fine, since New creates them
// world-searchable.
func Reachable(dir string) error {
	as, err := serverUser()
	if err != nil || as == nil {
		return err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return err
	}
	d := dir
	for {
		if _, err := os.Stat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		d = filepath.Dir(d)
	}
	cmd := exec.Command("/bin/sh", "-c", `test -x "$1"`, "sh", d)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: as.cred}
	cmd.Dir = as.home
	if cmd.Run() != nil {
		return fmt.Errorf("the postgres system user cannot reach %s (a folder on the way is not searchable)", dir)
	}
	return nil
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// AsServerUser makes cmd run as the user PostgreSQL servers run as (the
// postgres system user when we are root; unchanged otherwise), with dir and
// everything in it handed to that user. Companions of a server, such as
// PgBouncer, refuse root too.
func AsServerUser(cmd *exec.Cmd, dir string) error {
	as, err := serverUser()
	if err != nil || as == nil {
		return err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: as.cred}
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, int(as.cred.Uid), int(as.cred.Gid))
	})
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) { return freePort() }
