// Opens a TIFF with ImageJ 1.x's own reader (no GUI) and prints what ImageJ sees:
// slices, bit depth, width, height, and the mean of the last slice.
// Run: java -Djava.awt.headless=true -cp ij.jar ImageJProbe.java FILE
import ij.ImagePlus;
import ij.io.Opener;

public class ImageJProbe {
    public static void main(String[] args) {
        ImagePlus imp = new Opener().openImage(args[0]);
        if (imp == null) {
            System.out.println("ImageJ could not open " + args[0]);
            System.exit(1);
        }
        imp.setSlice(imp.getStackSize());
        double mean = imp.getProcessor().getStatistics().mean;
        System.out.println("slices=" + imp.getStackSize() + " bits=" + imp.getBitDepth()
                + " width=" + imp.getWidth() + " height=" + imp.getHeight() + " last_mean=" + mean);
    }
}
