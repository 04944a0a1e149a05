package demo

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"sync"
)

// Photo size and quality. Flat colours and gradients keep a photo at a few
// tens of kilobytes, so a demo site loads fast and the database stays small.
const (
	photoWidth   = 800
	photoHeight  = 533
	photoQuality = 80
)

// photoKind is what a photo shows: a house for houses, villas, townhouses
// and cottages, a block of flats for apartments, studios and penthouses.
type photoKind int

const (
	kindHouse photoKind = iota
	kindBuilding
	numKinds
)

// buildingsPerKind is how many buildings of each kind are drawn, and
// shotsPerBuilding how many photos of each: a listing shows one building,
// in one to shotsPerBuilding of its photos, and shares it with the other
// listings that picked it. Encoding a JPEG costs tens of milliseconds, so
// one set of photos per listing would dominate a seed on a busy machine.
const (
	buildingsPerKind = 6
	shotsPerBuilding = 3
)

// The shots of a building, in the order a listing shows them.
const (
	shotFront    = iota // from the street, by day
	shotOpposite        // from further along the street, at another time of day
	shotEntrance        // close to the front door
)

// photoSet holds the encoded shots of every building.
type photoSet struct {
	shots [numKinds][buildingsPerKind][shotsPerBuilding][]byte
}

// drawPhotos designs the buildings and draws and encodes their shots, in
// parallel, deterministically from seed: each building and each shot has
// its own random source, so the order in which goroutines run does not
// matter.
func drawPhotos(seed int64) (*photoSet, error) {
	var (
		set  photoSet
		errs [numKinds][buildingsPerKind][shotsPerBuilding]error
		wg   sync.WaitGroup
	)
	for k := range numKinds {
		for b := range buildingsPerKind {
			l := design(buildingRand(seed, k, b), k)
			for sh := range shotsPerBuilding {
				wg.Go(func() {
					img := drawShot(l, sh, shotRand(seed, k, b, sh))
					set.shots[k][b][sh], errs[k][b][sh] = encodeJPEG(img)
				})
			}
		}
	}
	wg.Wait()
	for k := range errs {
		for b := range errs[k] {
			for _, err := range errs[k][b] {
				if err != nil {
					return nil, fmt.Errorf("drawing demo photos: %w", err)
				}
			}
		}
	}
	return &set, nil
}

// buildingRand is the random source of building b of kind k: every shot of
// the building is drawn from what it decided.
func buildingRand(seed int64, k photoKind, b int) *rand.Rand {
	return streamRand(uint64(seed), 1, uint64(k), uint64(b))
}

// shotRand is the random source of what changes between a building's
// shots: the sky, the trees, where the photographer stands.
func shotRand(seed int64, k photoKind, b, shot int) *rand.Rand {
	return streamRand(uint64(seed), 2, uint64(k), uint64(b), uint64(shot))
}

// streamRand is a random source of its own for each list of numbers. The
// numbers are hashed into both of PCG's words: sources whose words differ
// by a little, such as consecutive stream numbers, draw alike.
func streamRand(parts ...uint64) *rand.Rand {
	h := uint64(0x9e3779b97f4a7c15)
	for _, p := range parts {
		h = splitMix(h ^ p)
	}
	return rand.New(rand.NewPCG(h, splitMix(h)))
}

// splitMix is SplitMix64's finaliser: every bit of x moves every bit of the
// result.
func splitMix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func encodeJPEG(img image.Image) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(48 << 10)
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: photoQuality}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Palettes the scenes choose from. A building's front and entrance are
// shot by day, the view from along the street at another time.
var (
	daySkies = []struct{ top, horizon color.RGBA }{
		{rgb(0x3a7bd5), rgb(0xbfe3ff)}, // clear day
		{rgb(0x5b8fd9), rgb(0xe6f2ff)}, // hazy day
		{rgb(0x2c5aa0), rgb(0x9fd0f0)}, // deep blue
	}
	otherSkies = []struct{ top, horizon color.RGBA }{
		{rgb(0x6a5acd), rgb(0xffc49b)}, // evening
		{rgb(0x4a6fa5), rgb(0xffe0b5)}, // golden hour
		{rgb(0x87a9c9), rgb(0xe8eef2)}, // overcast
	}
	grounds = []color.RGBA{rgb(0x6b9e4a), rgb(0x7cab57), rgb(0x5a8a3c), rgb(0x8fb36a), rgb(0xc9b48a)}
	walls   = []color.RGBA{
		rgb(0xf4efe6), rgb(0xf1e3c6), rgb(0xd9825b), rgb(0xf3d98b), rgb(0xb8d0de),
		rgb(0xa9bfa0), rgb(0xa34a3a), rgb(0xc9c5bd), rgb(0xe8c9b0), rgb(0xffffff),
	}
	roofs   = []color.RGBA{rgb(0x9c3b2a), rgb(0x6b4432), rgb(0x4f5a65), rgb(0x3b3b3b), rgb(0xb5562f)}
	doors   = []color.RGBA{rgb(0x7a4b2a), rgb(0x2f4f6f), rgb(0x3f6b45), rgb(0x8b1e2d), rgb(0x333333)}
	glass   = []color.RGBA{rgb(0xa9cfe8), rgb(0xcfe6f5), rgb(0x8fb8d8), rgb(0xf7e3a1)}
	foliage = []color.RGBA{rgb(0x2f6b2f), rgb(0x3c7d3a), rgb(0x4d8c3f), rgb(0x2a5a3a)}
)

func rgb(v uint32) color.RGBA {
	return color.RGBA{uint8(v >> 16), uint8(v >> 8), uint8(v), 0xff}
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// between returns a random int in [lo, hi].
func between(r *rand.Rand, lo, hi int) int { return lo + r.IntN(hi-lo+1) }

func shade(c color.RGBA, f float64) color.RGBA {
	m := func(v uint8) uint8 { return uint8(min(255, float64(v)*f)) }
	return color.RGBA{m(c.R), m(c.G), m(c.B), 0xff}
}

// look is one building and its plot: whatever stays the same in every
// photo of it.
type look struct {
	kind                      photoKind
	horizon                   int // where the ground begins, seen from the street
	ground, wall, door, glass color.RGBA
	width, height, x          int // the body, and its left edge seen from the front
	doorX                     int // the door's left edge, from the body's
	// A house's.
	roof                      color.RGBA
	roofHeight                int
	twoStoreys, chimney       bool
	chimneyAt                 int // per cent of the width
	windowWidth, windowHeight int
	// A block's.
	floors, floorHeight      int
	rail                     color.RGBA
	balconies                bool
	neighbour                color.RGBA
	neighbourX, neighbourPct int // the lower building behind: where, from the body's left edge, and how high
}

// design decides a building of kind k.
func design(r *rand.Rand, k photoKind) look {
	l := look{kind: k, horizon: between(r, photoHeight*68/100, photoHeight*74/100),
		ground: pick(r, grounds), wall: pick(r, walls), door: pick(r, doors), glass: pick(r, glass)}
	switch k {
	case kindHouse:
		l.twoStoreys = r.IntN(3) > 0
		l.width, l.height = between(r, 320, 460), between(r, 110, 135)
		if l.twoStoreys {
			l.width, l.height = between(r, 300, 420), between(r, 172, 200)
		}
		l.x = (photoWidth-l.width)/2 + between(r, -60, 60)
		l.roof, l.roofHeight = pick(r, roofs), between(r, 70, 110)
		l.chimney, l.chimneyAt = r.IntN(2) == 0, between(r, 60, 75)
		const doorW = 46
		l.doorX = l.width/2 - doorW/2 + between(r, -l.width/4, l.width/4)
		l.windowWidth, l.windowHeight = between(r, 44, 56), between(r, 44, 58)
	default:
		l.floors, l.floorHeight = between(r, 4, 7), between(r, 48, 58)
		l.width = between(r, 260, 380)
		l.height = min(l.floors*l.floorHeight+30, l.horizon-20)
		l.x = (photoWidth-l.width)/2 + between(r, -80, 80)
		l.neighbourX = l.width - 40
		if r.IntN(2) == 0 {
			l.neighbourX = -200
		}
		l.neighbour, l.neighbourPct = shade(pick(r, walls), 0.82), between(r, 50, 75)
		l.rail, l.balconies = shade(pick(r, roofs), 0.9), r.IntN(2) == 0
		const doorW = 60
		l.doorX = l.width/2 - doorW/2
	}
	return l
}

// drawShot paints shot sh of building l: a stylised street photo of sky,
// ground, the building with its windows and door, and a few trees.
func drawShot(l look, sh int, r *rand.Rand) *image.RGBA {
	switch sh {
	case shotOpposite:
		// Along the street, so the building stands elsewhere in the
		// frame, whole.
		left, right := l.x-30, photoWidth-30-(l.x+l.width)
		dx := between(r, right/2, right)
		if left > right {
			dx = -between(r, left/2, left)
		}
		return scene(l, dx, pick(r, otherSkies), r)
	case shotEntrance:
		return closeUp(scene(l, 0, pick(r, daySkies), r), l.x+l.doorX+30, l.horizon-60, 1.7)
	default: // shotFront
		return scene(l, 0, pick(r, daySkies), r)
	}
}

// scene paints building l, moved dx from where the front view has it.
func scene(l look, dx int, sky struct{ top, horizon color.RGBA }, r *rand.Rand) *image.RGBA {
	const w, h = photoWidth, photoHeight
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	horizon := l.horizon

	for y := range horizon {
		t := float64(y) / float64(horizon)
		fill(img, image.Rect(0, y, w, y+1), mix(sky.top, sky.horizon, t))
	}
	if r.IntN(3) > 0 {
		for range between(r, 1, 3) {
			cx, cy := between(r, 40, w-40), between(r, 30, horizon/3)
			cloud := color.RGBA{0xfb, 0xfb, 0xfd, 0xff}
			ellipse(img, cx, cy, between(r, 40, 70), between(r, 14, 22), cloud)
			ellipse(img, cx+between(r, 20, 40), cy-8, between(r, 25, 45), between(r, 14, 20), cloud)
		}
	} else {
		ellipse(img, between(r, 60, w-60), between(r, 40, 90), 28, 28, rgb(0xfff3b0))
	}

	for y := horizon; y < h; y++ {
		t := float64(y-horizon) / float64(h-horizon)
		fill(img, image.Rect(0, y, w, y+1), shade(l.ground, 1.05-0.2*t))
	}

	// Distant trees behind the building.
	for range between(r, 2, 5) {
		tree(img, r, between(r, 20, w-20), horizon, between(r, 30, 55))
	}

	x0 := l.x + dx
	var doorW int
	switch l.kind {
	case kindHouse:
		doorW = house(img, l, x0)
	default:
		doorW = block(img, l, x0)
	}

	// A path from the door to the bottom of the picture.
	path := rgb(0xd8d2c4)
	for y := horizon; y < h; y++ {
		t := float64(y-horizon) / float64(h-horizon)
		half := doorW/2 + int(t*float64(doorW))
		mid := x0 + l.doorX + doorW/2
		fill(img, image.Rect(mid-half, y, mid+half, y+1), shade(path, 1-0.15*t))
	}

	// Trees in front, to the sides.
	if r.IntN(4) > 0 {
		tree(img, r, between(r, 30, 130), between(r, horizon+20, h-40), between(r, 45, 75))
	}
	if r.IntN(2) == 0 {
		tree(img, r, between(r, w-130, w-30), between(r, horizon+20, h-40), between(r, 45, 75))
	}
	return img
}

// house draws detached house l with its left edge at x0, standing on the
// horizon with a pitched roof, and returns its door's width.
func house(img *image.RGBA, l look, x0 int) (doorW int) {
	const doorH = 78
	bw, horizon := l.width, l.horizon
	y0 := horizon - l.height
	roofH := l.roofHeight
	// Chimney first, so the roof covers its base.
	if l.chimney {
		cx := x0 + bw*l.chimneyAt/100
		fill(img, image.Rect(cx, y0-roofH+10, cx+24, y0-roofH/3), shade(l.wall, 0.8))
	}
	fill(img, image.Rect(x0, y0, x0+bw, horizon), l.wall)
	fill(img, image.Rect(x0, horizon-8, x0+bw, horizon), shade(l.wall, 0.8)) // plinth
	triangle(img, x0-18, x0+bw+18, y0, x0+bw/2, y0-roofH, l.roof)
	fill(img, image.Rect(x0-18, y0, x0+bw+18, y0+6), shade(l.roof, 0.7)) // eaves

	doorW = 46
	doorX := x0 + l.doorX
	fill(img, image.Rect(doorX-4, horizon-doorH-4, doorX+doorW+4, horizon), shade(l.wall, 0.75))
	fill(img, image.Rect(doorX, horizon-doorH, doorX+doorW, horizon), l.door)
	fill(img, image.Rect(doorX+doorW-12, horizon-doorH/2, doorX+doorW-7, horizon-doorH/2+5), rgb(0xd4af37))

	// Windows: a row upstairs, and downstairs wherever the door is not.
	ww, wh := l.windowWidth, l.windowHeight
	cols := max(2, bw/110)
	for i := range cols {
		cx := x0 + (i*2+1)*bw/(cols*2)
		if l.twoStoreys {
			window(img, cx-ww/2, y0+20, ww, wh, l.glass, l.wall)
		}
		if cx+ww/2 < doorX-14 || cx-ww/2 > doorX+doorW+14 {
			window(img, cx-ww/2, horizon-doorH, ww, wh, l.glass, l.wall)
		}
	}
	return doorW
}

// block draws block of flats l with its left edge at x0, with a flat roof
// and a lower neighbour behind, and returns its entrance's width.
func block(img *image.RGBA, l look, x0 int) (doorW int) {
	bw, bh, horizon, floorH := l.width, l.height, l.horizon, l.floorHeight
	y0 := horizon - bh
	nx := x0 + l.neighbourX
	fill(img, image.Rect(nx, horizon-bh*l.neighbourPct/100, nx+240, horizon), l.neighbour)

	fill(img, image.Rect(x0, y0, x0+bw, horizon), l.wall)
	fill(img, image.Rect(x0-6, y0-10, x0+bw+6, y0), shade(l.wall, 0.7)) // parapet
	cols := max(3, bw/85)
	ww := bw/cols - 26
	wh := floorH - 20
	for f := range l.floors {
		y := y0 + 16 + f*floorH
		if y+wh > horizon-floorH {
			break // the ground floor is the entrance's
		}
		for c := range cols {
			x := x0 + 13 + c*bw/cols
			window(img, x, y, ww, wh, l.glass, l.wall)
			if l.balconies && c%2 == 0 {
				fill(img, image.Rect(x-6, y+wh-12, x+ww+6, y+wh), l.rail)
			}
		}
	}
	doorW = 60
	doorX := x0 + l.doorX
	fill(img, image.Rect(doorX-10, horizon-floorH+2, doorX+doorW+10, horizon), shade(l.wall, 0.7))
	fill(img, image.Rect(doorX, horizon-floorH+10, doorX+doorW, horizon), mix(l.door, l.glass, 0.35))
	return doorW
}

// closeUp enlarges img zoom times around (cx, cy), kept inside the
// picture, back to the picture's size: a photo taken closer. Each pixel
// blends the four it falls between (bilinear), in integers: a plain area
// keeps its exact colour.
func closeUp(img *image.RGBA, cx, cy int, zoom float64) *image.RGBA {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	xs := zoomTaps(w, float64(cx), zoom)
	ys := zoomTaps(h, float64(cy), zoom)
	out := image.NewRGBA(img.Rect)
	for y, ty := range ys {
		above, below := img.Pix[ty.from*img.Stride:], img.Pix[ty.to*img.Stride:]
		row := out.Pix[y*out.Stride:]
		for x, tx := range xs {
			for c := range 4 {
				a, b := tx.from*4+c, tx.to*4+c
				top := int(above[a])*(256-tx.weight) + int(above[b])*tx.weight
				bottom := int(below[a])*(256-tx.weight) + int(below[b])*tx.weight
				row[x*4+c] = uint8((top*(256-ty.weight) + bottom*ty.weight) >> 16)
			}
		}
	}
	return out
}

// zoomTap is where one pixel of a close-up comes from along one axis: the
// two source pixels it falls between, and the second one's weight in 256ths.
type zoomTap struct{ from, to, weight int }

// zoomTaps maps the n pixels of an axis to the source pixels of a close-up
// zoom times around centre, whose window stays inside the n pixels.
func zoomTaps(n int, centre, zoom float64) []zoomTap {
	span := float64(n) / zoom
	origin := min(max(centre-span/2, 0), float64(n)-span)
	taps := make([]zoomTap, n)
	for i := range taps {
		at := min(max(origin+(float64(i)+0.5)/zoom-0.5, 0), float64(n-1))
		from := int(at)
		taps[i] = zoomTap{from: from, to: min(from+1, n-1), weight: int((at - float64(from)) * 256)}
	}
	return taps
}

// window draws a framed window with a sill and a glare stripe.
func window(img *image.RGBA, x, y, w, h int, g, wall color.RGBA) {
	fill(img, image.Rect(x-4, y-4, x+w+4, y+h+4), shade(wall, 0.72))
	fill(img, image.Rect(x, y, x+w, y+h), g)
	fill(img, image.Rect(x, y, x+w/3, y+h), mix(g, color.RGBA{0xff, 0xff, 0xff, 0xff}, 0.3))
	fill(img, image.Rect(x+w/2-1, y, x+w/2+2, y+h), shade(wall, 0.72))
	fill(img, image.Rect(x-6, y+h+4, x+w+6, y+h+8), shade(wall, 0.6))
}

// tree draws a trunk standing at (x, base) under a round crown of radius r.
func tree(img *image.RGBA, rnd *rand.Rand, x, base, radius int) {
	fill(img, image.Rect(x-radius/8, base-radius*2, x+radius/8, base), rgb(0x5b3a21))
	leaf := pick(rnd, foliage)
	ellipse(img, x, base-radius*2, radius, radius, leaf)
	ellipse(img, x-radius/3, base-radius*2-radius/3, radius*2/3, radius*2/3, shade(leaf, 1.15))
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	draw.Draw(img, r, &image.Uniform{c}, image.Point{}, draw.Src)
}

func mix(a, b color.RGBA, t float64) color.RGBA {
	l := func(x, y uint8) uint8 { return uint8(float64(x) + (float64(y)-float64(x))*t) }
	return color.RGBA{l(a.R, b.R), l(a.G, b.G), l(a.B, b.B), 0xff}
}

// ellipse fills an axis-aligned ellipse, span by span.
func ellipse(img *image.RGBA, cx, cy, rx, ry int, c color.RGBA) {
	for dy := -ry; dy <= ry; dy++ {
		f := 1 - float64(dy*dy)/float64(ry*ry)
		half := int(float64(rx) * math.Sqrt(max(f, 0)))
		fill(img, image.Rect(cx-half, cy+dy, cx+half+1, cy+dy+1), c)
	}
}

// triangle fills the triangle with a horizontal base from (x0, y) to
// (x1, y) and its apex at (ax, ay) above it.
func triangle(img *image.RGBA, x0, x1, y, ax, ay int, c color.RGBA) {
	for row := ay; row <= y; row++ {
		t := float64(row-ay) / float64(y-ay)
		l := ax + int(float64(x0-ax)*t)
		r := ax + int(float64(x1-ax)*t)
		fill(img, image.Rect(l, row, r+1, row+1), c)
	}
}
