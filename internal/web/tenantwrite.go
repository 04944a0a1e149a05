package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// tenantWrite runs write, one write of the request's tenant (a call of one
// content write function), with the tenant's scope, and follows the tenant
// to its new shard if it has moved.
//
// A request resolves its tenant when it arrives, from the registry cache. If
// the tenant moves while the request is on its way (an online move's
// cut-over holds the tenant's write fence for a moment, then points the
// registry at the new shard and lets go), or the cache was behind, the write
// reaches the old shard and is refused with tenant.ErrMoved: its transaction
// was rolled back before any statement of write ran, and a content write
// function makes one transaction, so running it again cannot make the write
// twice. tenantWrite then reads the tenant again from primary, not from the
// cache, tells the cache to forget it so the next requests go to the new
// shard, puts the new site in the request (so what the handler reads
// afterwards comes from the new shard too) and runs write once more. A
// second refusal, a tenant no longer active, or any other error is returned
// as it is, and answered as before (ErrWritesPaused is a 503 with
// Retry-After).
//
// write may run twice, so it must do nothing but the write through the
// scope it is given, with what the request has already read: a form's
// values, an upload's bytes. It must not read the body again.
func (s *Server) tenantWrite(r *http.Request, write func(tenant.Scope) error) error {
	st := siteFrom(r.Context())
	moved, err := s.writeFollowingMove(r.Context(), *st, write)
	if moved != nil {
		*st = *moved
		requestFrom(r.Context()).Shard = moved.Website.ShardName
	}
	return err
}

// writeFollowingMove is tenantWrite on a site of one's own. It returns where
// the tenant was found when it had moved, whether the second write succeeded
// or not, and nil otherwise.
func (s *Server) writeFollowingMove(ctx context.Context, st site, write func(tenant.Scope) error) (*site, error) {
	err := write(st.Scope)
	if !errors.Is(err, tenant.ErrMoved) {
		return nil, err
	}
	moved, ferr := s.followMove(ctx, st)
	if ferr != nil {
		return nil, ferr
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "tenant moved while a write was on its way; writing again on its new shard",
		slog.String("request_id", requestFrom(ctx).ID), slog.String("tenant", st.Website.Subdomain),
		slog.String("from", st.Scope.Shard), slog.String("to", moved.Scope.Shard), slog.Any("refused", err))
	return &moved, write(moved.Scope)
}

// followMove reads st's tenant from primary after a write was refused with
// tenant.ErrMoved, drops the registry cache's answers about it, and returns
// the site on its new shard. A tenant that is no longer active gets
// ErrWritesPaused: its writes wait until it is.
func (s *Server) followMove(ctx context.Context, st site) (site, error) {
	id := st.Website.ID
	// Whatever primary says now, what the cache holds is older than the
	// move this request has seen.
	s.registry.Forget(id)
	w, err := registry.Get(ctx, s.accounts, id)
	if err != nil {
		return st, fmt.Errorf("reading tenant %d again after it moved: %w", id, err)
	}
	if w.Status != registry.StatusActive {
		return st, fmt.Errorf("tenant %d moved to shard %s and is %s: %w", id, w.ShardName, w.Status, tenant.ErrWritesPaused)
	}
	sc, err := tenant.Resolve(s.shards, w)
	if err != nil {
		return st, err
	}
	return site{Website: w, Scope: sc}, nil
}
