# plot.gp - bench.png from benchmarks/compare's plot.dat.
# Called as: gnuplot -e "datafile='...'; outfile='...'; n=N" plot.gp
# Columns: label, then median/min/max for GCBench wall s, gctest wall s,
# GCBench max pause ms, GCBench total pause ms.
set terminal pngcairo size (400 + 110 * n), 960 font "sans,10"
set output outfile
set multiplot layout 2,1
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.6 border -1
set boxwidth 0.9
set logscale y
set grid ytics
set key top left
set xtics noenhanced font "sans,8"
set datafile missing "NaN"
set bmargin 4

set title "Wall time per configuration (median, whiskers min–max)"
set ylabel "seconds (log)"
plot datafile using 2:3:4:xtic(1) title "GCBench", \
     '' using 5:6:7 title "gctest"

set title "GCBench GC pauses (median, whiskers min–max)"
set ylabel "milliseconds (log)"
plot datafile using 8:9:10:xtic(1) title "max pause", \
     '' using 11:12:13 title "total pause"
unset multiplot
