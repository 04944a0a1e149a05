package content_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// While a tenant is read_only or in maintenance (a move freezes it so),
// every write fails with tenant.ErrWritesPaused and changes nothing, and
// reads go on.
func TestWrites_PausedUnlessActive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	for _, tc := range []struct{ shard, status string }{
		{shard.Default, registry.StatusReadOnly},
		{"shard_1", registry.StatusReadOnly},
		{shard.Default, registry.StatusMaintenance},
	} {
		t.Run(tc.shard+" "+tc.status, func(t *testing.T) {
			ctx := context.Background()
			s := e.site(t, tc.shard)
			o := seed(t, s)
			e.setStatus(t, s, tc.status)
			before := snapshot(t, s)

			errs := map[string]error{}
			_, errs["CreateProperty"] = content.CreateProperty(ctx, s, house("New"))
			_, errs["UpdateProperty"] = content.UpdateProperty(ctx, s, o.property.ID, house("Changed"))
			errs["DeleteProperty"] = content.DeleteProperty(ctx, s, o.property.ID)
			_, errs["AddPhoto"] = content.AddPhoto(ctx, s, o.property.ID, pngBytes(t), photoLimits)
			errs["DeletePhoto"] = content.DeletePhoto(ctx, s, o.photo.ID)
			errs["MovePhoto"] = content.MovePhoto(ctx, s, o.property.ID, o.photo.ID, 1)
			_, errs["CreatePropertyWithPhotos"] = content.CreatePropertyWithPhotos(ctx, s, house("New"), [][]byte{pngBytes(t)}, photoLimits)
			_, errs["SubmitEnquiry"] = content.SubmitEnquiry(ctx, s, content.Enquiry{Name: "N", Email: "n@example.com", Body: "Hi"})
			errs["SetMessageRead"] = content.SetMessageRead(ctx, s, o.message, true)
			_, errs["CreatePage"] = content.CreatePage(ctx, s, content.PageInput{Title: "New page"})
			_, errs["UpdatePage"] = content.UpdatePage(ctx, s, o.page.ID, content.PageInput{Title: "Changed"})
			errs["DeletePage"] = content.DeletePage(ctx, s, o.page.ID)
			errs["SaveAgency"] = content.SaveAgency(ctx, s, content.Agency{Name: "Changed"})
			for name, err := range errs {
				if !errors.Is(err, tenant.ErrWritesPaused) {
					t.Errorf("%s while %s: %v, want ErrWritesPaused", name, tc.status, err)
				}
			}
			if d := cmp.Diff(before, snapshot(t, s)); d != "" {
				t.Errorf("paused writes changed rows (-before +after):\n%s", d)
			}

			// Reads still work.
			if _, err := content.GetVisibleProperty(ctx, s, o.property.Slug); err != nil {
				t.Errorf("GetVisibleProperty while %s: %v", tc.status, err)
			}
			if r, err := content.Search(ctx, s, content.Filter{}); err != nil || r.Total != 1 {
				t.Errorf("Search while %s: %d, %v", tc.status, r.Total, err)
			}
			if r, err := content.ListProperties(ctx, s, content.ListFilter{Text: "secret"}); err != nil || r.Total != 1 {
				t.Errorf("ListProperties while %s: %d, %v", tc.status, r.Total, err)
			}
			if _, err := content.GetPhoto(ctx, s, o.photo.ID, true); err != nil {
				t.Errorf("GetPhoto while %s: %v", tc.status, err)
			}

			// Back to active, writes go through again.
			e.setStatus(t, s, registry.StatusActive)
			if _, err := content.CreateProperty(ctx, s, house("After thaw")); err != nil {
				t.Errorf("CreateProperty after reactivation: %v", err)
			}
		})
	}
}

// A scope resolved before its tenant moved must not write to the old shard.
// Every write function reports it as tenant.ErrMoved (which is also
// ErrWritesPaused), so the site can tell it apart and write again on the new
// shard: nothing of the refused write ran.
func TestWrites_PausedAfterTheTenantMoved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	s := e.site(t, shard.Default)
	o := seed(t, s)
	before := snapshot(t, s)
	if err := registry.SetShard(ctx, e.primary, s.WebsiteID, "shard_1"); err != nil {
		t.Fatal(err)
	}
	errs := map[string]error{}
	_, errs["CreateProperty"] = content.CreateProperty(ctx, s, house("Stale scope"))
	_, errs["UpdateProperty"] = content.UpdateProperty(ctx, s, o.property.ID, house("Changed"))
	errs["DeleteProperty"] = content.DeleteProperty(ctx, s, o.property.ID)
	_, errs["AddPhoto"] = content.AddPhoto(ctx, s, o.property.ID, pngBytes(t), photoLimits)
	errs["DeletePhoto"] = content.DeletePhoto(ctx, s, o.photo.ID)
	errs["MovePhoto"] = content.MovePhoto(ctx, s, o.property.ID, o.photo.ID, 1)
	_, errs["CreatePropertyWithPhotos"] = content.CreatePropertyWithPhotos(ctx, s, house("Stale scope"), [][]byte{pngBytes(t)}, photoLimits)
	_, errs["SubmitEnquiry"] = content.SubmitEnquiry(ctx, s, content.Enquiry{Name: "N", Email: "n@example.com", Body: "Hi"})
	errs["SetMessageRead"] = content.SetMessageRead(ctx, s, o.message, true)
	_, errs["CreatePage"] = content.CreatePage(ctx, s, content.PageInput{Title: "New page"})
	_, errs["UpdatePage"] = content.UpdatePage(ctx, s, o.page.ID, content.PageInput{Title: "Changed"})
	errs["DeletePage"] = content.DeletePage(ctx, s, o.page.ID)
	errs["SaveAgency"] = content.SaveAgency(ctx, s, content.Agency{Name: "Changed"})
	for name, err := range errs {
		wantErr(t, name+" through a stale scope", err, tenant.ErrMoved)
		wantErr(t, name+" through a stale scope", err, tenant.ErrWritesPaused)
		var moved *tenant.MovedError
		if !errors.As(err, &moved) || moved.To != "shard_1" {
			t.Errorf("%s through a stale scope: %v, want a MovedError to shard_1", name, err)
		}
	}
	if d := cmp.Diff(before, snapshot(t, s)); d != "" {
		t.Errorf("a stale scope wrote rows:\n%s", d)
	}
}
