package ui

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The charts are inline SVG drawn by the templates from these geometries:
// only numbers are computed here; every text (label names and values,
// metric names) is put on the page by html/template, which escapes it.

// Bar is one bar of a horizontal bar chart.
type Bar struct {
	Label string
	// Value and Value2 are drawn as two bars (e.g. distinct values and the
	// series saved by dropping the label); Text and Text2 are their labels.
	Value, Value2 float64
	Text, Text2   string
	// W and W2 are the bars' widths in chart units, Y their row's top.
	W, W2, Y float64
}

// BarChart is a horizontal bar chart.
type BarChart struct {
	Title, Legend, Legend2 string
	Bars                   []Bar
	Width, Height          float64
	// LabelW is the width of the label column; BarMax the longest bar.
	LabelW, BarMax float64
}

const (
	barRow   = 34.0
	barWidth = 760.0
	barLabel = 200.0
)

func newBarChart(title, legend, legend2 string, bars []Bar) BarChart {
	maxV := 0.0
	for _, b := range bars {
		maxV = math.Max(maxV, math.Max(b.Value, b.Value2))
	}
	c := BarChart{Title: title, Legend: legend, Legend2: legend2, Width: barWidth, LabelW: barLabel, BarMax: barWidth - barLabel - 90}
	for i := range bars {
		b := &bars[i]
		if maxV > 0 {
			b.W = math.Max(1, b.Value/maxV*c.BarMax)
			if b.Value2 > 0 {
				b.W2 = math.Max(1, b.Value2/maxV*c.BarMax)
			}
		}
		b.Y = float64(i)*barRow + 4
	}
	c.Bars = bars
	c.Height = float64(len(bars))*barRow + 8
	return c
}

// LineChart is a time series chart of one or two lines.
type LineChart struct {
	Title         string
	Lines         []Line
	Width, Height float64
	// From and To label the time axis; Max the value axis.
	From, To, Max string
	Empty         bool
	// EmptyNote, when set, says why an Empty chart is empty.
	EmptyNote string
	// Table is the data as rows for the accessible table under the chart.
	Table [][]string
	Heads []string
}

// Line is one polyline of a LineChart.
type Line struct {
	Name   string
	Points string
	Class  string
}

const (
	lineW = 760.0
	lineH = 160.0
)

func newLineChart(title string, times []time.Time, lines map[string][]float64, order []string) LineChart {
	c := LineChart{Title: title, Width: lineW, Height: lineH, Heads: append([]string{"time"}, order...)}
	maxV := 0.0
	for _, vs := range lines {
		for _, v := range vs {
			if !math.IsNaN(v) {
				maxV = math.Max(maxV, v)
			}
		}
	}
	if len(times) < 2 {
		c.Empty = true
		return c
	}
	if maxV == 0 {
		maxV = 1
	}
	c.From, c.To, c.Max = times[0].UTC().Format("15:04:05"), times[len(times)-1].UTC().Format("15:04:05 UTC"), human(maxV)
	t0, t1 := times[0], times[len(times)-1]
	span := t1.Sub(t0).Seconds()
	for k, name := range order {
		var pts []string
		for i, v := range lines[name] {
			if math.IsNaN(v) {
				continue
			}
			x := 0.0
			if span > 0 {
				x = times[i].Sub(t0).Seconds() / span * (lineW - 60)
			}
			y := lineH - 20 - v/maxV*(lineH-30)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x+50, y))
		}
		c.Lines = append(c.Lines, Line{Name: name, Points: strings.Join(pts, " "), Class: fmt.Sprintf("line%d", k)})
	}
	step := max(1, len(times)/10)
	for i := len(times) - 1; i >= 0; i -= step {
		row := []string{times[i].UTC().Format("15:04:05")}
		for _, name := range order {
			row = append(row, human(lines[name][i]))
		}
		c.Table = append(c.Table, row)
	}
	return c
}

// Dot is one point of a scatter chart.
type Dot struct {
	Label, Tip string
	X, Y       float64
	Class      string
	Href       string
}

// Scatter is the cost × readers chart.
type Scatter struct {
	Title         string
	Dots          []Dot
	Width, Height float64
	XMax, YMax    string
}

// newScatter places dots with x on a log scale of cost (series) and y on a
// linear scale of readers.
func newScatter(title string, dots []Dot, xs, ys []float64) Scatter {
	s := Scatter{Title: title, Width: lineW, Height: 300}
	xMax, yMax := 1.0, 1.0
	for i := range dots {
		xMax, yMax = math.Max(xMax, xs[i]), math.Max(yMax, ys[i])
	}
	s.XMax, s.YMax = human(xMax), human(yMax)
	for i := range dots {
		dots[i].X = 50 + math.Log10(1+xs[i])/math.Log10(1+xMax)*(s.Width-80)
		dots[i].Y = s.Height - 30 - ys[i]/yMax*(s.Height-50)
	}
	s.Dots = dots
	return s
}

// human formats a number shortly: 1234 → 1.23k.
func human(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case math.Abs(v) >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', 2, 64) + "G"
	case math.Abs(v) >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	case math.Abs(v) >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
