// Package devenv brings up the local platform behind `pwb dev`: one real
// PostgreSQL server per distinct loopback address in the development
// configuration, with data kept under a folder so a second run reuses it.
package devenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/pglocal"
)

// Server is one started instance and the shards it serves.
type Server struct {
	*pglocal.Server
	Shards []string
}

// Stack is the set of servers `pwb dev` started.
type Stack struct {
	Servers []Server
}

// Start starts (initialising on first use) a server for every distinct
// host:port of cfg under dir. Every entry must point at a loopback host.
func Start(ctx context.Context, cfg *config.Config, dir string) (*Stack, error) {
	if err := pglocal.Reachable(dir); err != nil {
		return nil, fmt.Errorf("%v: run pwb dev --dir with a folder outside it, e.g. --dir /var/lib/pwb/dev", err)
	}
	byAddr := map[string]int{}
	st := &Stack{}
	for _, sh := range cfg.Shards {
		if ip := net.ParseIP(sh.Host); sh.Host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("shard %q points at %s: pwb dev only starts servers on this machine's loopback address", sh.Name, sh.Addr())
		}
		if i, ok := byAddr[sh.Addr()]; ok {
			st.Servers[i].Shards = append(st.Servers[i].Shards, sh.Name)
			continue
		}
		srv, err := pglocal.New(ctx, pglocal.Options{Dir: filepath.Join(dir, sh.Key), Port: sh.Port})
		if err != nil {
			return nil, errors.Join(err, st.Stop(context.WithoutCancel(ctx)))
		}
		if srv.Running(ctx) {
			return nil, errors.Join(fmt.Errorf("a server is already running on %s: is `pwb dev` running in another terminal?", srv.DataDir()),
				st.Stop(context.WithoutCancel(ctx)))
		}
		if err := srv.Start(ctx); err != nil {
			return nil, errors.Join(err, st.Stop(context.WithoutCancel(ctx)))
		}
		byAddr[sh.Addr()] = len(st.Servers)
		st.Servers = append(st.Servers, Server{Server: srv, Shards: []string{sh.Name}})
	}
	return st, nil
}

// Stop stops every server cleanly, keeping the data.
func (st *Stack) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	errs := make([]error, len(st.Servers))
	var wg sync.WaitGroup
	for i, s := range st.Servers {
		wg.Go(func() { errs[i] = s.Stop(ctx, false) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
