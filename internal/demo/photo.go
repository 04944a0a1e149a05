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

// variantsPerKind is how many photos are drawn of each kind and shared by
// every property of that kind. Encoding a JPEG costs tens of milliseconds,
// so one per photo would dominate a seed on a busy machine.
const variantsPerKind = 6

// photoSet holds the encoded variants of each kind.
type photoSet [numKinds][variantsPerKind][]byte

// drawPhotos draws and encodes every variant, in parallel, deterministically
// from seed: each variant has its own random source, so the order in which
// goroutines run does not matter.
func drawPhotos(seed int64) (*photoSet, error) {
	var (
		set  photoSet
		errs [numKinds][variantsPerKind]error
		wg   sync.WaitGroup
	)
	for k := range numKinds {
		for v := range variantsPerKind {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(seed), uint64(0x9e3779b9+int(k)*variantsPerKind+v)))
				set[k][v], errs[k][v] = encodeJPEG(drawScene(r, k))
			})
		}
	}
	wg.Wait()
	for k := range errs {
		for _, err := range errs[k] {
			if err != nil {
				return nil, fmt.Errorf("drawing demo photos: %w", err)
			}
		}
	}
	return &set, nil
}

func encodeJPEG(img image.Image) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(48 << 10)
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: photoQuality}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Palettes the scenes choose from.
var (
	skies = []struct{ top, horizon color.RGBA }{
		{rgb(0x3a7bd5), rgb(0xbfe3ff)}, // clear day
		{rgb(0x5b8fd9), rgb(0xe6f2ff)}, // hazy day
		{rgb(0x2c5aa0), rgb(0x9fd0f0)}, // deep blue
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

// drawScene paints a stylised street photo: sky, ground, the building of
// kind k with its windows and door, and a few trees.
func drawScene(r *rand.Rand, k photoKind) *image.RGBA {
	const w, h = photoWidth, photoHeight
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	horizon := between(r, h*66/100, h*76/100)

	sky := pick(r, skies)
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

	ground := pick(r, grounds)
	for y := horizon; y < h; y++ {
		t := float64(y-horizon) / float64(h-horizon)
		fill(img, image.Rect(0, y, w, y+1), shade(ground, 1.05-0.2*t))
	}

	// Distant trees behind the building.
	for range between(r, 2, 5) {
		tree(img, r, between(r, 20, w-20), horizon, between(r, 30, 55))
	}

	wall := pick(r, walls)
	var doorX, doorW int
	switch k {
	case kindHouse:
		doorX, doorW = house(img, r, horizon, wall)
	default:
		doorX, doorW = building(img, r, horizon, wall)
	}

	// A path from the door to the bottom of the picture.
	path := rgb(0xd8d2c4)
	for y := horizon; y < h; y++ {
		t := float64(y-horizon) / float64(h-horizon)
		half := doorW/2 + int(t*float64(doorW))
		mid := doorX + doorW/2
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

// house draws a detached house with a pitched roof standing on the horizon
// and returns where its door is.
func house(img *image.RGBA, r *rand.Rand, horizon int, wall color.RGBA) (doorX, doorW int) {
	const doorH = 78
	twoStoreys := r.IntN(3) > 0
	bw := between(r, 320, 460)
	bh := between(r, 110, 135)
	if twoStoreys {
		bw, bh = between(r, 300, 420), between(r, 172, 200)
	}
	x0 := (photoWidth-bw)/2 + between(r, -60, 60)
	y0 := horizon - bh
	body := image.Rect(x0, y0, x0+bw, horizon)

	roof := pick(r, roofs)
	roofH := between(r, 70, 110)
	// Chimney first, so the roof covers its base.
	if r.IntN(2) == 0 {
		cx := x0 + bw*between(r, 60, 75)/100
		fill(img, image.Rect(cx, y0-roofH+10, cx+24, y0-roofH/3), shade(wall, 0.8))
	}
	fill(img, body, wall)
	fill(img, image.Rect(x0, horizon-8, x0+bw, horizon), shade(wall, 0.8)) // plinth
	triangle(img, x0-18, x0+bw+18, y0, x0+bw/2, y0-roofH, roof)
	fill(img, image.Rect(x0-18, y0, x0+bw+18, y0+6), shade(roof, 0.7)) // eaves

	doorW = 46
	doorX = x0 + bw/2 - doorW/2 + between(r, -bw/4, bw/4)
	fill(img, image.Rect(doorX-4, horizon-doorH-4, doorX+doorW+4, horizon), shade(wall, 0.75))
	fill(img, image.Rect(doorX, horizon-doorH, doorX+doorW, horizon), pick(r, doors))
	fill(img, image.Rect(doorX+doorW-12, horizon-doorH/2, doorX+doorW-7, horizon-doorH/2+5), rgb(0xd4af37))

	// Windows: a row upstairs, and downstairs wherever the door is not.
	g := pick(r, glass)
	ww, wh := between(r, 44, 56), between(r, 44, 58)
	cols := max(2, bw/110)
	for i := range cols {
		cx := x0 + (i*2+1)*bw/(cols*2)
		if twoStoreys {
			window(img, cx-ww/2, y0+20, ww, wh, g, wall)
		}
		if cx+ww/2 < doorX-14 || cx-ww/2 > doorX+doorW+14 {
			window(img, cx-ww/2, horizon-doorH, ww, wh, g, wall)
		}
	}
	return doorX, doorW
}

// building draws a block of flats with a flat roof and returns where its
// entrance is.
func building(img *image.RGBA, r *rand.Rand, horizon int, wall color.RGBA) (doorX, doorW int) {
	floors := between(r, 4, 7)
	floorH := between(r, 48, 58)
	bw := between(r, 260, 380)
	bh := min(floors*floorH+30, horizon-20)
	x0 := (photoWidth-bw)/2 + between(r, -80, 80)
	y0 := horizon - bh

	// A neighbour behind, lower and greyer, gives it a street.
	nx := x0 + bw - 40
	if r.IntN(2) == 0 {
		nx = x0 - 200
	}
	fill(img, image.Rect(nx, horizon-bh*between(r, 50, 75)/100, nx+240, horizon), shade(pick(r, walls), 0.82))

	fill(img, image.Rect(x0, y0, x0+bw, horizon), wall)
	fill(img, image.Rect(x0-6, y0-10, x0+bw+6, y0), shade(wall, 0.7)) // parapet
	g := pick(r, glass)
	rail := shade(pick(r, roofs), 0.9)
	cols := max(3, bw/85)
	ww := bw/cols - 26
	wh := floorH - 20
	balconies := r.IntN(2) == 0
	for f := range floors {
		y := y0 + 16 + f*floorH
		if y+wh > horizon-floorH {
			break // the ground floor is the entrance's
		}
		for c := range cols {
			x := x0 + 13 + c*bw/cols
			window(img, x, y, ww, wh, g, wall)
			if balconies && c%2 == 0 {
				fill(img, image.Rect(x-6, y+wh-12, x+ww+6, y+wh), rail)
			}
		}
	}
	doorW = 60
	doorX = x0 + bw/2 - doorW/2
	fill(img, image.Rect(doorX-10, horizon-floorH+2, doorX+doorW+10, horizon), shade(wall, 0.7))
	fill(img, image.Rect(doorX, horizon-floorH+10, doorX+doorW, horizon), mix(pick(r, doors), g, 0.35))
	return doorX, doorW
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
