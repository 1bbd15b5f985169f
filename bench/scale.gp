# scale.gp - bench/run-scale's charts: wall time, time per collection and
# max pause, one line per dirty-page source, against the live heap
# (axis='heap', log scale) or the number of mutator threads (axis='threads').
#   gnuplot -e "datadir='D'; sources='full uffd'; axis='heap'; xlabel='...'; out='x.png'" scale.gp
# reads D/scale-<axis>-<source>.dat: x wall_s ms_per_collection max_pause_ms
set terminal pngcairo size 1500, 450 font ",10" noenhanced
set output out
set multiplot layout 1, 3 title "cost against ".(axis eq 'heap' ? "live heap" : "mutator threads")
set grid
set key top left opaque box
set xlabel xlabel
if (axis eq 'heap') { set logscale xy 2; set format x "%g" } else { set logscale x 2; set xtics (1, 2, 4, 8) }
set yrange [*:*]
do for [c = 2:4] {
    set title (c == 2 ? "wall time" : c == 3 ? "time per collection (stop-the-world)" : "max pause")
    set ylabel (c == 2 ? "s" : "ms")
    plot for [s in sources] sprintf("%s/scale-%s-%s.dat", datadir, axis, s) \
         using 1:c with linespoints lw 2 title s
}
unset multiplot
